package host

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sync"

	"github.com/hashicorp/go-hclog"
)

// maxLogLine bounds one plugin log line; longer lines are cut, never
// buffered without limit.
const maxLogLine = 64 << 10

// stderrLog re-emits a plugin's stderr on the host logger. Lines that are
// hclog JSON keep their level, message and fields; anything else is logged
// as text. No input can make it panic: go-plugin's own parser can (a JSON
// line whose @message is a number), which is why go-plugin's logger is off.
type stderrLog struct {
	log hclog.Logger

	mu      sync.Mutex
	buf     []byte
	dropped bool // the current line overflowed and is being skipped
	inPanic bool
}

func newStderrLog(log hclog.Logger) *stderrLog { return &stderrLog{log: log} }

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

func (w *stderrLog) flushLine() {
	line := w.buf
	cut := w.dropped
	w.buf, w.dropped = w.buf[:0], false
	if len(bytes.TrimSpace(line)) == 0 {
		return
	}
	if cut {
		w.log.Warn("plugin log line cut", "line", string(line), "limit", maxLogLine)
		return
	}
	if line[0] == '{' {
		if w.emitJSON(line) {
			return
		}
	}
	text := string(line)
	switch {
	case bytes.HasPrefix(line, []byte("panic:")) || bytes.HasPrefix(line, []byte("fatal error:")):
		w.inPanic = true
		w.log.Error(text)
	case w.inPanic:
		w.log.Error(text)
	case bytes.HasPrefix(line, []byte("[ERROR]")):
		w.log.Error(text)
	case bytes.HasPrefix(line, []byte("[WARN]")):
		w.log.Warn(text)
	case bytes.HasPrefix(line, []byte("[INFO]")):
		w.log.Info(text)
	case bytes.HasPrefix(line, []byte("[TRACE]")):
		w.log.Trace(text)
	default:
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
	msg := asString(m["@message"])
	level := hclog.LevelFromString(asString(m["@level"]))
	if level == hclog.NoLevel {
		level = hclog.Info
	}
	args := make([]any, 0, 2*len(m))
	for k, v := range m {
		switch k {
		case "@message", "@level", "@timestamp", "@module", "@caller":
			continue
		}
		args = append(args, k, v)
	}
	w.log.Log(level, msg, args...)
	return true
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
