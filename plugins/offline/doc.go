// Package offline is a model provider that needs no network and no key: an
// agent that uses it can hold a conversation on a machine with nothing else
// installed. It serves every model type the message pipeline uses —
// TEXT_SMALL, TEXT_LARGE, OBJECT_SMALL, OBJECT_LARGE, TEXT_EMBEDDING and
// TEXT_TOKENIZER_ENCODE/DECODE — at priority 0, so any real model provider
// an agent also uses wins over it. Every answer is deterministic: the same
// request always gets the same answer.
//
// # Text: an ELIZA engine
//
// Text replies come from [Engine], a re-implementation of the technique
// Joseph Weizenbaum described for ELIZA (CACM, 1966), with a rule set
// written for this package. The input is split into clauses at punctuation
// and at "but"; pre-substitutions expand contractions and slang ("i'm" → "i
// am", "u" → "you"). Every word may be a keyword, and keywords have ranks;
// the highest-ranked keyword found wins, earlier ones breaking ties. Each
// keyword owns decomposition patterns whose elements are literal words, "*"
// (any run of words, possibly none) and "@group" (any word of a synonym
// group, such as @family or @sad). The first pattern that matches the clause
// splits it into numbered parts; a reassembly template of that pattern then
// builds the reply, quoting parts as "(n)" after pronoun reflection (I ↔
// you, my ↔ your, am ↔ are, ...). A template may instead hand the clause to
// another keyword ("=name"). Whenever the user says "my ...", the rest is
// pushed on a small memory stack; a later input with no keyword pops it
// ("Earlier you said your ..."), and with an empty stack a
// fallback keeps the user talking.
//
// Weizenbaum's program cycled through a pattern's templates as a side effect
// of being used. Here the engine keeps no state: [Engine.Reply] replays the
// user's earlier lines of the conversation to rebuild the counters and the
// memory stack, then answers. The same history and input therefore always
// give the same reply, one Engine serves any number of conversations at
// once, and a restarted plugin process answers exactly as before.
//
// # Embeddings
//
// [Embed] is a hashed bag of words: lower-cased words and adjacent word pairs
// are hashed (FNV-1a) into buckets with a sign taken from the hash, and the
// vector is L2-normalized. Texts sharing words point the same way, which is
// enough for memory search to find something relevant without a model. The
// dimension is 384 unless the agent sets OFFLINE_EMBEDDING_DIMENSIONS
// (8..4096).
//
// # Objects
//
// OBJECT_SMALL and OBJECT_LARGE answer valid JSON of the shape asked for,
// with no invented content: with params "output" = "enum", the first of
// "enumValues"; with "array", []; with a JSON Schema in params "schema", the
// least value of that schema (a const or the first enum value, listed
// properties, empty strings and lists, 0, false); otherwise the shape of
// the last JSON object in the prompt (its example answer) with its content
// emptied, or {"thought", "text"} when there is none. Fields named thought,
// text, message or reply carry the engine's answer.
//
// # Tokenizer
//
// TEXT_TOKENIZER_ENCODE turns Prompt into a JSON array of token ids and
// TEXT_TOKENIZER_DECODE turns params "tokens" back into Text, with
// tiktoken's o200k_base encoding (GPT-4o's), whose ranks are compiled into
// the binary (github.com/tiktoken-go/tokenizer): token counts are those of
// an OpenAI model, with no network.
//
// # Prompt conventions
//
// A text request carries a full prompt written by the bootstrap plugin. This
// package reads it as follows; a prompt that follows none of it still gets a
// reply to its last line.
//
// A line starting with "#" begins a section; the heading is compared without
// regard to case and may carry more words after the name.
//
//	# Agent: NAME
//	    names the agent. Lines spoken by NAME are the agent's own and are
//	    left out of the engine's history. Without it every line counts as
//	    the user's.
//
//	# Conversation Messages
//	    the conversation so far, oldest first, one message per line as
//	    "Name: text" (a name of at most 64 bytes, without a colon). A
//	    line without such a prefix continues the previous message.
//
//	# Received Message
//	    the message to answer: the next non-empty line, as "Name: text",
//	    plus any following lines up to the next "#" line or the end.
//
//	# Available Actions
//	    the actions the agent may take, one per line as
//	    "- NAME: description".
//
// The message to answer is taken from "# Received Message"; without that
// section, from the last user message of "# Conversation Messages"; without
// either, from the last non-empty line of the prompt that is not a heading,
// less a leading "Name: ". The engine's history is the user messages of the
// conversation, without the final one when it is the message being answered.
//
// If the prompt contains "<response>" the reply is XML with the fields of
// its last <response> template (the elements directly inside it, in
// order), or of the message handler's when it lists none:
//
//	<response><thought>…</thought><actions>REPLY</actions><providers></providers><text>…</text></response>
//
// thought and reasoning get why the engine answered as it did; text,
// message and reply its answer; actions REPLY, then every action of "#
// Available Actions" that the received message names; name the agent's
// name; prompt (an image prompt) the received message; every other field
// (facts, relationships, values to extract) is left empty, so nothing is
// made up.
//
// # Choosing actions
//
// The engine always replies, so actions starts with REPLY. An offered
// action is added when the message names it, by its name or by one of its
// similes (read once per agent from the host with DescribeAgent): the
// name's words, split at "_", stand in the message in a row, compared
// without regard to case and to the endings -s, -es, -ed, -ing and -e. So
// with a plugin's WAVE action offered, "wave at me" and "are you waving?"
// answer REPLY,WAVE, while "a wavelength" does not; "send a message" does
// not name SEND_MESSAGE, "send message" does. Actions are listed in the
// order the message names them. The choice is deterministic, so a
// plugin's action can be tried out with no model key.
// &, < and > are escaped. A prompt without "<response>" that asks for
// "<decision>" (a yes/no confirmation) gets <decision>NO</decision>. If the
// prompt contains the upper-case
// words RESPOND, IGNORE and STOP it is taken as the should-respond question,
// and the answer is always
//
//	<response><name>NAME</name><reasoning>…</reasoning><action>RESPOND</action></response>
//
// with NAME from "# Agent:", else the character's name, else "agent".
package offline
