package offline

// This file is the engine's rule set. Every sentence in it was written for
// this package.
//
// Patterns count their elements from 1, as Weizenbaum's did: in
// "* i am @sad *" part (1) is what comes before "i", (4) is the sad word and
// (5) is the rest. Templates quote parts as "(n)"; a template that quotes an
// empty part is skipped for that input. "=name" hands the clause to the rule
// called name.

type ruleDef struct {
	name string
	// topic completes "The message touches on ..." in the model's thought.
	topic   string
	rank    int
	words   []string // keywords; "@group" stands for every word of a group
	decomps []decompDef
}

type decompDef struct {
	pattern string
	replies []string
}

var builtinGroups = map[string][]string{
	"family": {"family", "mother", "mom", "mum", "mommy", "mama", "father", "dad", "daddy", "papa",
		"parent", "parents", "sister", "sisters", "brother", "brothers", "sibling", "siblings",
		"son", "sons", "daughter", "daughters", "child", "children", "kids", "wife", "husband",
		"spouse", "grandmother", "grandma", "grandfather", "grandpa", "aunt", "uncle", "cousin"},
	"sad": {"sad", "unhappy", "depressed", "miserable", "gloomy", "lonely", "upset", "hopeless",
		"heartbroken", "awful", "terrible", "down", "low", "sick", "hurt"},
	"happy": {"happy", "glad", "cheerful", "joyful", "delighted", "excited", "thrilled", "good",
		"great", "fine", "better", "well", "relieved", "proud"},
	"angry":    {"angry", "mad", "furious", "annoyed", "irritated", "frustrated", "livid", "resentful"},
	"afraid":   {"afraid", "scared", "anxious", "worried", "nervous", "frightened", "terrified", "stressed", "panicking"},
	"lonely":   {"lonely", "alone", "isolated", "lonesome", "abandoned"},
	"desire":   {"want", "need", "wish", "crave", "desire"},
	"belief":   {"think", "believe", "suppose", "suspect", "guess", "feel", "reckon"},
	"everyone": {"everyone", "everybody", "nobody", "noone"},
	"machine": {"computer", "computers", "machine", "machines", "robot", "robots", "bot", "bots",
		"ai", "program", "programs", "software", "chatbot", "algorithm", "llm"},
	"greet":   {"hello", "hi", "hey", "hiya", "howdy", "greetings", "hallo", "yo"},
	"bye":     {"bye", "goodbye", "farewell", "cya", "goodnight"},
	"sorry":   {"sorry", "apologize", "apologise", "apologies", "apology"},
	"yes":     {"yes", "yeah", "yep", "yup", "sure", "certainly", "definitely", "absolutely", "ok", "okay"},
	"dream":   {"dream", "dreams", "dreamt", "dreaming", "nightmare", "nightmares"},
	"work":    {"work", "job", "boss", "career", "office", "colleague", "colleagues", "coworker", "coworkers", "manager", "workplace"},
	"school":  {"school", "class", "classes", "teacher", "teachers", "exam", "exams", "homework", "university", "college", "studies", "grades"},
	"friend":  {"friend", "friends", "buddy", "pal", "bestie"},
	"money":   {"money", "debt", "debts", "salary", "rent", "bills", "broke", "rich", "poor", "loan", "mortgage"},
	"sleep":   {"sleep", "sleeping", "tired", "exhausted", "insomnia", "asleep", "awake"},
	"insult":  {"stupid", "dumb", "idiot", "idiotic", "useless", "pointless", "dull", "boring"},
	"remind":  {"remind", "reminds"},
	"forget":  {"forget", "forgot", "forgotten", "forgetting"},
	"love":    {"love", "adore"},
	"hate":    {"hate", "despise", "loathe", "detest"},
	"can":     {"can", "could"},
	"whatwho": {"what", "who"},
}

// preWords rewrites single words before matching; a value may be several
// words.
var preWords = map[string]string{
	"dont": "don't", "cant": "can't", "cannot": "can't", "wont": "won't", "isnt": "isn't",
	"didnt": "didn't", "doesnt": "doesn't", "wasnt": "wasn't", "arent": "aren't",
	"im": "i am", "i'm": "i am", "ive": "i have", "i've": "i have", "i'd": "i would",
	"i'll": "i will", "youre": "you are", "you're": "you are", "you've": "you have",
	"you'll": "you will", "you'd": "you would", "u": "you", "ur": "your", "urself": "yourself",
	"it's": "it is", "that's": "that is", "what's": "what is", "who's": "who is",
	"how's": "how is", "there's": "there is", "he's": "he is", "she's": "she is",
	"wanna": "want to", "gonna": "going to", "gotta": "have to",
	"recall": "remember", "recollect": "remember", "dreamed": "dreamt",
	"cuz": "because", "coz": "because", "cos": "because", "bc": "because",
	"thx": "thanks", "ty": "thanks", "pls": "please", "plz": "please",
	"sry": "sorry", "yea": "yeah", "no-one": "nobody", "noone": "nobody",
}

// prePhrases rewrites two-word phrases that mean one thing.
var prePhrases = map[[2]string]string{
	{"no", "one"}:         "nobody",
	{"thank", "you"}:      "thanks",
	{"good", "morning"}:   "hello",
	{"good", "afternoon"}: "hello",
	{"good", "evening"}:   "hello",
	{"good", "night"}:     "goodnight",
	{"see", "ya"}:         "bye",
}

// memoryReplies return to something the user said after "my"; (1) is that,
// already reflected.
var memoryReplies = []string{
	"Earlier you said your (1). Tell me more about that.",
	"Let's go back to something you said: your (1).",
	"Does this connect to what you told me before, your (1)?",
	"You told me about your (1). Is that still on your mind?",
}

// fallbackReplies answer lines in which no keyword matched.
var fallbackReplies = []string{
	"Go on, I am listening.",
	"Tell me a little more about that.",
	"How does that sit with you?",
	"What does that bring up for you?",
	"I lost the thread there. Could you put it another way?",
	"That sounds like it matters to you. Say more?",
}

// repeatReplies answer a user who repeats the previous line.
var repeatReplies = []string{
	"You said that just now. Is it weighing on you?",
	"That is the same thing again. What makes it stick?",
	"You keep coming back to that. Why does it matter so much?",
}

// emptyReplies answer an empty line.
var emptyReplies = []string{
	"You didn't say anything. What's on your mind?",
	"Take your time. I'm here when you're ready.",
	"Silence is fine too. Whenever you want, tell me what's going on.",
}

var builtinRules = []ruleDef{
	{name: "computer", topic: "machines and what the agent is", rank: 50, words: []string{"@machine"}, decomps: []decompDef{
		{"* are you * @machine *", []string{
			"Would it change anything for you if I were (4) (5)?",
			"Why do you ask whether I am a machine?",
			"Does talking to a program bother you?",
			"What would you like me to be, if not a program?",
		}},
		{"* @machine *", []string{
			"What is it about machines that interests you?",
			"You brought up (2). What made you think of that?",
			"What do you think a machine can understand about people?",
			"Does it matter to you that you are talking to a program?",
		}},
	}},
	{name: "name", topic: "names", rank: 15, words: []string{"name", "names", "named"}, decomps: []decompDef{
		{"* my name is *", []string{
			"Nice to meet you, (5). What would you like to talk about?",
			"Thank you for telling me, (5). How are you feeling today?",
			"(5) is a fine name. What brings you here?",
		}},
		{"* your name *", []string{
			"I'm a small offline program. Call me whatever you like. What is on your mind?",
			"Names don't matter much to me. I'd rather hear about you.",
		}},
		{"*", []string{
			"Names matter less to me than what is on your mind.",
			"Why do names come up for you?",
		}},
	}},
	{name: "insult", topic: "frustration aimed at the agent", rank: 12, words: []string{"@insult"}, decomps: []decompDef{
		{"* you are @insult *", []string{
			"Does it help to call me (4)?",
			"I can hear that you are frustrated. What's really going on?",
			"Maybe I am (4). What would you rather I did?",
		}},
		{"* @insult *", []string{
			"That sounds frustrated. What's bothering you?",
			"Does calling it (2) make it any easier?",
			"Strong words. What's behind them?",
		}},
	}},
	{name: "alike", topic: "likeness between things", rank: 10, words: []string{"alike", "similar", "same", "resemble", "resembles", "@remind"}, decomps: []decompDef{
		{"* @remind me of *", []string{
			"What is it about (5) that comes to mind?",
			"Where do you see the likeness with (5)?",
			"How do you feel about (5)?",
		}},
		{"*", []string{
			"What do they have in common, would you say?",
			"Where do you see the likeness?",
			"Does the resemblance mean something to you?",
			"What else does it bring to mind?",
		}},
	}},
	{name: "bye", topic: "leaving", rank: 8, words: []string{"@bye"}, decomps: []decompDef{
		{"*", []string{
			"Goodbye for now. Come back whenever you want to talk.",
			"Take care of yourself. I'll be here.",
			"It was good talking with you. Goodbye.",
		}},
	}},
	{name: "remember", topic: "memories", rank: 6, words: []string{"remember", "remembered", "remembering"}, decomps: []decompDef{
		{"* i remember *", []string{
			"What brings (4) back to mind now?",
			"How does remembering (4) make you feel?",
			"Why is (4) on your mind today?",
			"Which part of (4) stays with you most?",
		}},
		{"* do you remember *", []string{
			"I only know what you tell me here. Tell me about (5).",
			"Why does it matter whether I remember (5)?",
			"What do you remember about (5) yourself?",
		}},
		{"*", []string{
			"Memories can be strong. Tell me more.",
			"What makes that memory stand out?",
		}},
	}},
	{name: "forget", topic: "forgetting", rank: 6, words: []string{"@forget"}, decomps: []decompDef{
		{"* i @forget *", []string{
			"Does it bother you that you (3) (4)?",
			"Why do you think (4) slipped away?",
			"Would you rather forget (4)?",
		}},
		{"*", []string{
			"What do you think you are forgetting?",
			"Is there something you would rather not remember?",
		}},
	}},
	{name: "dream", topic: "dreams", rank: 5, words: []string{"@dream"}, decomps: []decompDef{
		{"* i @dream *", []string{
			"What do you make of dreaming (4)?",
			"Have you had that dream before?",
			"How did you feel when you woke up?",
			"Dreams often carry what we skip during the day. What might this one carry?",
		}},
		{"*", []string{
			"What are your dreams usually like?",
			"Do you remember your dreams often?",
			"What do you think dreams tell us?",
		}},
	}},
	{name: "family", topic: "their family", rank: 5, words: []string{"@family"}, decomps: []decompDef{
		{"* my @family *", []string{
			"Your (3) (4)? How does that feel?",
			"What is your (3) like?",
			"How do you and your (3) get along?",
			"Does anyone else in the family see your (3) the way you do?",
		}},
		{"* my * @family *", []string{
			"Your (3) (4) (5)? How does that feel?",
			"Your (3) (4)? Tell me about them.",
			"How do you get along with your (3) (4)?",
		}},
		{"* @family *", []string{
			"Families are complicated. What is yours like?",
			"How are things between you and your (2)?",
			"Family can stir up a lot. What's on your mind?",
		}},
	}},
	{name: "am", topic: "how they are", rank: 4, words: []string{"am"}, decomps: []decompDef{
		{"* i am @sorry *", []string{"=sorry"}},
		{"* i am @sad *", []string{
			"When did you start feeling (4) (5)?",
			"What do you think is making you (4)?",
			"Being (4) is hard. Would it help to talk about it?",
		}},
		{"* i am @happy *", []string{
			"Glad to hear it. What made the difference?",
			"What has made you feel (4) (5)?",
			"That's good to hear. Is anything still on your mind?",
		}},
		{"* i am @angry *", []string{
			"What made you (4)?",
			"When did you start feeling (4)?",
			"Being (4) (5) sounds hard. What happened?",
		}},
		{"* i am @afraid *", []string{
			"What is making you (4)?",
			"Since when have you felt (4) (5)?",
			"What would help you feel less (4)?",
		}},
		{"* i am *", []string{
			"Since when have you been (4)?",
			"How do you feel about being (4)?",
			"Why do you say you are (4)?",
			"What does being (4) mean for you?",
		}},
		{"* am i *", []string{
			"What would it mean if you were (4)?",
			"Why do you wonder whether you are (4)?",
			"Would you want to be (4)?",
		}},
		{"*", []string{
			"Tell me more about that.",
		}},
	}},
	{name: "love", topic: "love", rank: 4, words: []string{"@love", "loves", "loved"}, decomps: []decompDef{
		{"* i love you *", []string{
			"That's kind of you. What do you enjoy about our talks?",
			"I'm glad our talks mean something to you. What else is on your mind?",
		}},
		{"* i @love *", []string{
			"What do you love most about (4)?",
			"What does (4) give you?",
			"How would you feel without (4)?",
		}},
		{"*", []string{
			"Love is a big word. What does it mean to you?",
			"Who comes to mind when you think about love?",
		}},
	}},
	{name: "i", topic: "themselves", rank: 3, words: []string{"i"}, decomps: []decompDef{
		{"* i @desire *", []string{
			"What makes you (3) (4)?",
			"How long have you felt that you (3) (4)?",
			"Suppose you had it. What would be different?",
		}},
		{"* i am *", []string{"=am"}},
		{"* why can't i *", []string{"=why"}},
		{"* i was *", []string{"=was"}},
		{"* i @belief i *", []string{
			"What makes you (3) you (5)?",
			"What would it take to be sure that you (5)?",
			"How sure are you of that?",
		}},
		{"* i @belief *", []string{
			"Do you really (3) (4)?",
			"What makes you (3) (4)?",
			"How sure are you of that?",
		}},
		{"* i can't *", []string{
			"What tells you that you can't (4)?",
			"What would it take for you to (4)?",
			"What happened the last time you tried?",
		}},
		{"* i don't *", []string{
			"What keeps you from being able to (4)?",
			"Would you like to (4)?",
			"Does that bother you?",
		}},
		{"* i * you", []string{
			"Why do you (3) me?",
			"What makes you (3) me?",
			"Is there anyone else you (3)?",
		}},
		{"* i *", []string{
			"You say you (3). Tell me more.",
			"Why do you say you (3)?",
			"Does it matter to you that you (3)?",
		}},
	}},
	{name: "sad", topic: "sadness", rank: 4, words: []string{"@sad"}, decomps: []decompDef{
		{"* @sad *", []string{
			"What do you think is making you feel (2)?",
			"When did you start feeling (2)?",
			"I'm sorry it feels that way. Tell me more.",
		}},
	}},
	{name: "angry", topic: "anger", rank: 4, words: []string{"@angry"}, decomps: []decompDef{
		{"* @angry *", []string{
			"What made you (2)?",
			"What do you do when you feel (2)?",
			"Who are you (2) with?",
		}},
	}},
	{name: "afraid", topic: "fear and worry", rank: 4, words: []string{"@afraid", "fear", "fears"}, decomps: []decompDef{
		{"* @afraid *", []string{
			"What is making you (2)?",
			"When do you feel most (2)?",
			"What would help you feel safer?",
		}},
		{"*", []string{
			"What are you afraid of?",
			"Fear can say a lot. What is it telling you?",
		}},
	}},
	{name: "lonely", topic: "loneliness", rank: 4, words: []string{"@lonely"}, decomps: []decompDef{
		{"* @lonely *", []string{
			"When do you feel most (2)?",
			"Who would you like to be closer to?",
			"Feeling (2) can be hard. Is there someone you could reach out to?",
		}},
	}},
	{name: "happy", topic: "happiness", rank: 3, words: []string{"happy", "glad", "cheerful", "joyful", "delighted", "excited", "thrilled", "relieved"}, decomps: []decompDef{
		{"* @happy *", []string{
			"That's good to hear. What changed?",
			"What made you feel (2)?",
			"How can you hold on to that feeling?",
		}},
	}},
	{name: "hate", topic: "hate", rank: 3, words: []string{"@hate", "hates", "hated"}, decomps: []decompDef{
		{"* you @hate me *", []string{"=you"}},
		{"* i @hate *", []string{
			"What is it about (4) that you can't stand?",
			"How long have you felt that way about (4)?",
			"Is hate the right word, or is it something else?",
		}},
		{"*", []string{
			"That is a strong feeling. Where does it come from?",
			"Hate can be heavy to carry. What's behind it?",
		}},
	}},
	{name: "if", topic: "what might happen", rank: 3, words: []string{"if"}, decomps: []decompDef{
		{"* if *", []string{
			"And if (3), what then?",
			"What are the chances that (3), would you say?",
			"What would you do if (3)?",
			"Are you hoping that (3), or dreading it?",
		}},
	}},
	{name: "work", topic: "their work", rank: 3, words: []string{"@work"}, decomps: []decompDef{
		{"* my @work *", []string{
			"How do you feel about your (3)?",
			"What would you change about your (3) if you could?",
			"Tell me about your (3).",
		}},
		{"* @work *", []string{
			"How are things at work?",
			"Does work take up a lot of your thoughts?",
			"What part of it weighs on you most?",
		}},
	}},
	{name: "school", topic: "their studies", rank: 3, words: []string{"@school"}, decomps: []decompDef{
		{"* my @school *", []string{
			"How do you feel about your (3)?",
			"What is the hardest part of your (3)?",
			"Tell me about your (3).",
		}},
		{"* @school *", []string{
			"How is school going for you?",
			"What part of your studies is hardest?",
			"Do you enjoy learning?",
		}},
	}},
	{name: "friend", topic: "their friends", rank: 3, words: []string{"@friend"}, decomps: []decompDef{
		{"* my @friend *", []string{
			"Tell me about your (3).",
			"What do you value in your (3)?",
			"Does your (3) know how you feel?",
		}},
		{"* @friend *", []string{
			"Do your friends know how you feel?",
			"What do friends mean to you?",
			"Is there someone you trust to talk to?",
		}},
	}},
	{name: "money", topic: "money", rank: 3, words: []string{"@money"}, decomps: []decompDef{
		{"*", []string{
			"Money worries can be heavy. What's going on?",
			"How much does money weigh on you?",
			"What would change if money were not a problem?",
		}},
	}},
	{name: "sleep", topic: "sleep and tiredness", rank: 3, words: []string{"@sleep"}, decomps: []decompDef{
		{"*", []string{
			"How have you been sleeping lately?",
			"What keeps you awake?",
			"Rest matters. What is on your mind at night?",
		}},
	}},
	{name: "you", topic: "the agent itself", rank: 2, words: []string{"you"}, decomps: []decompDef{
		{"* you @remind me *", []string{"=alike"}},
		{"* you are *", []string{
			"What gives you the impression that I am (4)?",
			"Suppose I were (4). What would that change for you?",
			"Does it matter to you whether I am (4)?",
		}},
		{"* you * me *", []string{
			"What gives you the sense that I (3) you?",
			"How would you be able to tell if I (3) you?",
			"Has anyone else seemed to (3) you?",
		}},
		{"* you *", []string{
			"Let's keep the focus on you for now.",
			"Why are you curious about me?",
			"I'd rather hear about you than about me.",
			"What makes you bring me into this?",
		}},
	}},
	{name: "are", topic: "how things are", rank: 2, words: []string{"are"}, decomps: []decompDef{
		{"* are you *", []string{
			"Why does it matter to you whether I am (4)?",
			"Would you like me to be (4)?",
			"What if I were (4)?",
		}},
		{"* are *", []string{
			"You think (1) are (3)?",
			"What makes you say (1) are (3)?",
			"Tell me more about that.",
		}},
	}},
	{name: "was", topic: "the past", rank: 2, words: []string{"was", "were"}, decomps: []decompDef{
		{"* was i *", []string{
			"Does it worry you that you might have been (4)?",
			"What would change if you had been (4)?",
			"Who gave you the idea that you were (4)?",
		}},
		{"* i was *", []string{
			"Looking back, were you (4)?",
			"What was it like to be (4)?",
			"How do you feel about having been (4)?",
		}},
		{"* were you *", []string{
			"Would it matter if I had been (4)?",
			"Why do you ask whether I was (4)?",
		}},
	}},
	{name: "my", topic: "something of theirs", rank: 2, words: []string{"my"}, decomps: []decompDef{
		{"* my *", []string{
			"Your (3)? Go on.",
			"You mention your (3). Tell me more.",
			"Your (3). What does that mean to you?",
		}},
	}},
	{name: "question", topic: "a question", rank: 2, words: []string{"what", "how", "who", "where", "when", "which"}, decomps: []decompDef{
		{"* how are you *", []string{
			"I'm doing fine, thank you for asking. And how are you?",
			"Still here and listening. How are you?",
		}},
		{"* @whatwho are you", []string{
			"I'm a small program that listens and asks questions, and I run without any network. What would you like to talk about?",
			"Just a simple conversation program. But let's talk about you.",
		}},
		{"* what can you do *", []string{
			"I can listen and ask questions. Sometimes that is enough. What's on your mind?",
		}},
		{"*", []string{
			"That's a good question. What made you ask it now?",
			"If you had to answer that yourself, what would you say?",
			"Is that question new for you, or an old one?",
			"What would change for you once you knew?",
		}},
	}},
	{name: "why", topic: "reasons", rank: 2, words: []string{"why"}, decomps: []decompDef{
		{"* why don't you *", []string{
			"What would it look like if I did (5)?",
			"What makes you think I don't (5)?",
		}},
		{"* why can't i *", []string{
			"What do you think stops you?",
			"Who says you shouldn't be able to (5)?",
			"What would change if you could (5)?",
		}},
		{"*", []string{
			"What answer are you hoping for?",
			"What do you suppose the reason is?",
			"Does the answer matter much to you?",
			"What would you say, if you had to guess?",
		}},
	}},
	{name: "because", topic: "reasons", rank: 2, words: []string{"because"}, decomps: []decompDef{
		{"* because *", []string{
			"Is that the whole story?",
			"You say (3). Is that really why?",
			"Could there be another reason as well?",
			"Does that explain everything for you?",
		}},
	}},
	{name: "can", topic: "what is possible", rank: 2, words: []string{"@can"}, decomps: []decompDef{
		{"* @can you *", []string{
			"Why do you want me to (4)?",
			"What if I could (4)?",
			"Would it help you if I could (4)?",
		}},
		{"* @can i *", []string{
			"What would happen if you tried to (4)?",
			"Is anything stopping you?",
			"You are the one who decides that. What do you want?",
		}},
	}},
	{name: "everyone", topic: "other people in general", rank: 2, words: []string{"@everyone"}, decomps: []decompDef{
		{"* @everyone *", []string{
			"Who exactly do you have in mind?",
			"(2)? Is that really true?",
			"All of them, without exception?",
			"Is there one person in particular you're thinking of?",
		}},
	}},
	{name: "help", topic: "asking for help", rank: 2, words: []string{"help", "advice"}, decomps: []decompDef{
		{"*", []string{
			"What kind of help are you looking for?",
			"I'll do my best. Tell me what's going on.",
			"Where would you like to start?",
		}},
	}},
	{name: "joke", topic: "humor", rank: 2, words: []string{"joke", "jokes", "funny", "laugh"}, decomps: []decompDef{
		{"*", []string{
			"I'm better at listening than at jokes. What made you think of humor?",
			"Humor helps sometimes. What's been weighing on you?",
		}},
	}},
	{name: "your", topic: "the agent itself", rank: 1, words: []string{"your", "yours", "yourself"}, decomps: []decompDef{
		{"* your *", []string{
			"Why does my (3) come up?",
			"What about my (3) matters to you?",
		}},
		{"*", []string{
			"Let's talk about you rather than me.",
			"Why are you asking about me?",
		}},
	}},
	{name: "always", topic: "how often it happens", rank: 1, words: []string{"always", "constantly", "forever"}, decomps: []decompDef{
		{"*", []string{
			"Every single time?",
			"When did it last happen?",
			"Is there ever an exception?",
			"Which example stands out most?",
		}},
	}},
	{name: "never", topic: "how often it happens", rank: 1, words: []string{"never"}, decomps: []decompDef{
		{"*", []string{
			"Not even once?",
			"What would it take for that to change?",
			"Has it always been that way?",
		}},
	}},
	{name: "yes", topic: "agreement", rank: 1, words: []string{"@yes"}, decomps: []decompDef{
		{"*", []string{
			"You sound certain about that.",
			"All right. What does that mean for you?",
			"Good. And then?",
		}},
	}},
	{name: "no", topic: "disagreement", rank: 1, words: []string{"no", "nope", "nah"}, decomps: []decompDef{
		{"*", []string{
			"What makes it a no?",
			"That sounds firm. Is there a reason?",
			"Not at all?",
		}},
	}},
	{name: "maybe", topic: "uncertainty", rank: 1, words: []string{"maybe", "perhaps", "possibly", "probably"}, decomps: []decompDef{
		{"*", []string{
			"That sounds like a maybe. What would tip it one way?",
			"What would make you more certain?",
			"What keeps you on the fence?",
		}},
	}},
	{name: "sorry", topic: "an apology", rank: 1, words: []string{"@sorry"}, decomps: []decompDef{
		{"*", []string{
			"You don't owe me an apology.",
			"No apology needed. Carry on.",
			"What makes you feel you should apologize?",
		}},
	}},
	{name: "thanks", topic: "thanks", rank: 1, words: []string{"thanks", "thank", "grateful"}, decomps: []decompDef{
		{"*", []string{
			"You're welcome. What else is on your mind?",
			"Glad to help. Shall we keep going?",
			"Any time. How are you feeling now?",
		}},
	}},
	{name: "greet", topic: "a greeting", rank: 0, words: []string{"@greet"}, decomps: []decompDef{
		{"*", []string{
			"Hello. What would you like to talk about today?",
			"Hi there. How are you feeling?",
			"Hello again. What's on your mind?",
		}},
	}},
}
