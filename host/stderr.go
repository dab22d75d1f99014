package host

import (
	"bytes"
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/hashicorp/go-hclog"
)

// maxLogLine bounds one plugin log line; longer lines are cut, never
// buffered without limit.
const maxLogLine = 64 << 10

// maxPanicLines bounds how long a panic's stack is logged as errors: a
// plugin that printed "panic:" and lives on does not make the rest of its
// log errors.
const maxPanicLines = 400

// Plugins are untrusted, and so is what they write to stderr. Their lines
// reach the host's log under the plugin's own logger name, which they
// cannot change; control characters are escaped, so a line can never end
// early and forge one of the host's; the fields the host uses to say whom a
// line is about (agent, plugin, pid) are renamed; and a plugin's lines are
// rationed.

// stderrLog re-emits a plugin's stderr on the host logger. Lines that are
// hclog JSON keep their level, message and fields; anything else is logged
// as text. No input can make it panic: go-plugin's own parser can (a JSON
// line whose @message is a number), which is why go-plugin's logger is off.
type stderrLog struct {
	log    hclog.Logger
	budget *logBudget

	mu         sync.Mutex
	buf        []byte
	dropped    bool // the current line overflowed and is being skipped
	panicLines int  // > 0 while inside a panic's output
	fatal      string
	// sinceFatal counts the lines since the last fatal line (see
	// fatalFollowUps).
	sinceFatal int
	// early keeps the last lines written before the handshake: when the
	// handshake fails they say why (an interpreter's error, a missing
	// module), which go-plugin's own message does not.
	early     []string
	handshook bool
}

// maxEarlyLines bounds the lines kept from before the handshake, and
// maxEarlyLine each of them.
const (
	maxEarlyLines = 20
	maxEarlyLine  = 500
)

func newStderrLog(log hclog.Logger, budget *logBudget) *stderrLog {
	return &stderrLog{log: log, budget: budget}
}

func (w *stderrLog) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	n := len(p)
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			w.add(p)
			break
		}
		w.add(p[:i])
		w.flushLine()
		p = p[i+1:]
	}
	return n, nil
}

// handshaken says the handshake is done: later lines are not kept.
func (w *stderrLog) handshaken() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.handshook, w.early = true, nil
}

// earlyLines are the last lines the process wrote before its handshake
// (none after the handshake).
func (w *stderrLog) earlyLines() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]string(nil), w.early...)
}

// lastFatal is the first line of the last panic or fatal error the plugin
// printed: why it died, when it did.
func (w *stderrLog) lastFatal() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.fatal
}

func (w *stderrLog) add(p []byte) {
	if w.dropped {
		return
	}
	if len(w.buf)+len(p) > maxLogLine {
		w.buf = append(w.buf, p[:maxLogLine-len(w.buf)]...)
		w.dropped = true
		return
	}
	w.buf = append(w.buf, p...)
}

// fatalPrefixes start the lines with which a process says why it is dying:
// Go's panics and runtime errors (out of memory among them), the Go
// runtime's failures to start a thread (its own, or through cgo's
// pthread_create, which fails so when the thread's stack is over the
// memory limit), Node's and V8's, Python's, and the confinement
// trampoline's.
var fatalPrefixes = []string{"panic:", "fatal error:", "runtime: out of memory", "runtime: failed to create new OS thread",
	"runtime/cgo:", "FATAL ERROR:", "Fatal process out of memory", "Traceback (most recent call last)", "agenthost: confine plugin"}

// goSignalLine is the line with which the Go runtime starts the dump of a
// process a signal ends ("SIGABRT: abort", "SIGSEGV: segmentation
// violation"): how it died, which a line just before may say the cause of.
var goSignalLine = regexp.MustCompile(`^SIG[A-Z0-9]+: `)

// fatalFollowUps are lines that tell how a process dies after a line just
// before said why: cgo aborts after "runtime/cgo: pthread_create failed",
// and Go throws "fatal error: newosproc" after "runtime: failed to create
// new OS thread".
var fatalFollowUps = []string{"fatal error: newosproc"}

// fatalFollowUpLines is how many lines after the cause a follow-up is taken
// as its consequence (another thread's log line may come in between).
const fatalFollowUpLines = 5

// fatalLine says whether a line says that the process is dying, and
// whether it is a follow-up: how, after an earlier line said why (the
// prefixes hold no character that cleanText changes).
func fatalLine(line []byte) (fatal, followUp bool) {
	for _, prefix := range fatalFollowUps {
		if bytes.HasPrefix(line, []byte(prefix)) {
			return true, true
		}
	}
	if goSignalLine.Match(line) {
		return true, true
	}
	for _, prefix := range fatalPrefixes {
		if bytes.HasPrefix(line, []byte(prefix)) {
			return true, false
		}
	}
	return false, false
}

func (w *stderrLog) flushLine() {
	line := w.buf
	cut := w.dropped
	w.buf, w.dropped = w.buf[:0], false
	if len(bytes.TrimSpace(line)) == 0 {
		return
	}
	if !w.handshook {
		if len(w.early) == maxEarlyLines {
			w.early = append(w.early[:0], w.early[1:]...)
		}
		w.early = append(w.early, clip(cleanText(string(line)), maxEarlyLine))
	}
	// Why a process dies is noted even when its lines are over budget:
	// the host names it when it restarts the plugin, and a plugin that
	// flooded its log just before must not hide it.
	fatal, followUp := false, false
	if !cut {
		fatal, followUp = fatalLine(line)
	}
	w.sinceFatal++
	switch {
	case fatal && followUp && w.fatal != "" && w.sinceFatal <= fatalFollowUpLines:
		// The cause came a line or so before: it stays what the process
		// died of, the follow-up says how.
		w.panicLines, w.sinceFatal = 1, 0
		if len(w.fatal) < 300 {
			w.fatal += "; " + cleanText(string(line))
		}
	case fatal:
		w.panicLines, w.sinceFatal, w.fatal = 1, 0, cleanText(string(line))
	case w.panicLines > 0 && w.fatal != "" && len(w.fatal) < 200 && bytes.Contains(line, []byte("out of memory")):
		// Node prints the allocation failure a line after FATAL ERROR.
		w.fatal += " " + cleanText(string(line))
	}
	if !w.budget.take() {
		return
	}
	if cut {
		w.log.Warn("plugin log line cut", "line", cleanText(string(line)), "limit", maxLogLine)
		return
	}
	if line[0] == '{' {
		if w.emitJSON(line) {
			// A plugin that logs normally again is no longer panicking.
			w.panicLines = 0
			return
		}
	}
	text := cleanText(string(line))
	switch {
	case fatal:
		w.log.Error(text)
	case w.panicLines > 0 && w.panicLines < maxPanicLines:
		w.panicLines++
		w.log.Error(text)
	case strings.HasPrefix(text, "[ERROR]"):
		w.panicLines = 0
		w.log.Error(text)
	case strings.HasPrefix(text, "[WARN]"):
		w.panicLines = 0
		w.log.Warn(text)
	case strings.HasPrefix(text, "[INFO]"):
		w.panicLines = 0
		w.log.Info(text)
	case strings.HasPrefix(text, "[TRACE]"):
		w.panicLines = 0
		w.log.Trace(text)
	default:
		w.panicLines = 0
		w.log.Debug(text)
	}
}

// emitJSON logs an hclog-shaped JSON line. Every field is checked, none is
// trusted to have a type.
func (w *stderrLog) emitJSON(line []byte) bool {
	var m map[string]any
	if err := json.Unmarshal(line, &m); err != nil {
		return false
	}
	msg := cleanText(asString(m["@message"]))
	level := hclog.LevelFromString(asString(m["@level"]))
	if level == hclog.NoLevel {
		level = hclog.Info
	}
	// In the order of their names: a map has none of its own, and a
	// plugin's lines read best when their fields stand in the same place
	// on every line (hclog writes them sorted, too).
	keys := make([]string, 0, len(m))
	for k := range m {
		switch k {
		case "@message", "@level", "@timestamp", "@module", "@caller":
			continue
		}
		keys = append(keys, k)
	}
	slices.Sort(keys)
	args := make([]any, 0, 2*len(keys))
	for _, k := range keys {
		args = append(args, fieldName(k), fieldValue(m[k]))
	}
	w.log.Log(level, msg, args...)
	return true
}

// hostFields are the fields with which the host says whom a line is about;
// a plugin's field of the same name is renamed, so that it cannot pass its
// line off as one about another agent.
var hostFields = map[string]bool{"agent": true, "plugin": true, "pid": true}

// fieldName keeps a plugin's field name readable and harmless: letters,
// digits and _ . - only, at most 64 of them, never a host field's name.
func fieldName(k string) string {
	if len(k) > 64 {
		k = k[:64]
	}
	k = strings.Map(func(r rune) rune {
		if r < utf8.RuneSelf && (unicode.IsLetter(r) || unicode.IsDigit(r) || r == '_' || r == '.' || r == '-') {
			return r
		}
		return '_'
	}, k)
	if k == "" {
		k = "_"
	}
	if hostFields[k] {
		k = "plugin_" + k
	}
	return k
}

// fieldValue is a field's value as text, escaped: hclog prints nested
// values with %v, which would let raw control characters through.
func fieldValue(v any) any {
	switch x := v.(type) {
	case string:
		return cleanText(x)
	case float64, bool, nil:
		return x
	}
	b, err := json.Marshal(v)
	if err != nil {
		return "(unprintable)"
	}
	return cleanText(string(b))
}

// cleanText escapes control characters (a newline among them) and invalid
// UTF-8, the way Go quotes them: a plugin's text stays on its own line.
func cleanText(s string) string {
	clean := true
	for _, r := range s {
		if r == utf8.RuneError || (r != '\t' && unicode.IsControl(r)) {
			clean = false
			break
		}
	}
	if clean {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case r != '\t' && unicode.IsControl(r):
			q := fmt.Sprintf("%+q", string(r))
			b.WriteString(q[1 : len(q)-1])
		default:
			b.WriteString(s[i : i+size])
		}
		i += size
	}
	return b.String()
}

func asString(v any) string {
	switch s := v.(type) {
	case nil:
		return ""
	case string:
		return s
	default:
		return fmt.Sprint(s)
	}
}

// logBudget rations one plugin process's log lines: a token bucket of
// logBurst lines refilled at logRate a second. Lines over it are counted
// and said in one line once the flood has gone on for a second.
type logBudget struct {
	log hclog.Logger

	mu         sync.Mutex
	tokens     float64
	last       time.Time
	suppressed int
	reporting  bool
}

const (
	logRate  = 200
	logBurst = 2000
)

func newLogBudget(log hclog.Logger) *logBudget {
	return &logBudget{log: log, tokens: logBurst, last: time.Now()}
}

func (b *logBudget) take() bool {
	if b == nil {
		return true
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	now := time.Now()
	b.tokens = min(logBurst, b.tokens+now.Sub(b.last).Seconds()*logRate)
	b.last = now
	if b.tokens >= 1 {
		b.tokens--
		return true
	}
	b.suppressed++
	if !b.reporting {
		b.reporting = true
		time.AfterFunc(time.Second, b.report)
	}
	return false
}

func (b *logBudget) report() {
	b.mu.Lock()
	n := b.suppressed
	b.suppressed, b.reporting = 0, false
	b.mu.Unlock()
	if n > 0 {
		b.log.Warn(fmt.Sprintf("suppressed %d lines of the plugin's log: it writes more than %d lines a second", n, logRate))
	}
}
