package host

import (
	"errors"
	"syscall"
	"time"
)

// A plugin that makes more Runtime calls than its limit has its calls wait
// (callRate), and while it keeps going over the limit its storage calls go
// one at a time (admit) and its processes run at the lowest CPU priority.
// The work of its calls is done by the host and the database plugin, at
// the rate the plugin gets them done: one at a time, each takes longer the
// more the two have to do for the other agents; and making them takes the
// plugin CPU too, which at the lowest priority is what the others leave.
// On an idle machine the flood goes on at its limit. Once the plugin has
// kept within its limit for throttleCalm, all is as it was.

const (
	// throttledNice is the nice value of a plugin over its call limit.
	throttledNice = 19
	// throttleCalm is how long a plugin keeps within its limit before its
	// priority comes back.
	throttleCalm = 5 * time.Second
)

// throttle is a plugin's CPU priority while it goes over its call limit.
type throttle struct {
	// pid is the process (and process group) dealt with, 0 when none;
	// lowered says its priority was lowered.
	pid     int
	lowered bool
	last    time.Time // its last call over the limit
	// nice is the value its processes had before (the daemon's).
	nice  int
	timer *time.Timer
	// stuck: the daemon may not raise a priority (it lacks CAP_SYS_NICE),
	// so the process stays low until it ends.
	stuck bool
}

// overCallLimit notes a Runtime call that had to wait for the plugin's call
// limit: its storage calls go one at a time (admit), and its process's
// priority is lowered when it is not yet.
func (p *PluginProcess) overCallLimit() {
	p.mu.Lock()
	defer p.mu.Unlock()
	t := &p.throttle
	t.last = time.Now()
	p.throttled.Store(true)
	if t.timer == nil {
		t.timer = time.AfterFunc(throttleCalm, p.throttleCheck)
	}
	c := p.cur
	if c == nil || c.attached || c.pid <= 0 || t.pid == c.pid {
		return
	}
	if t.pid == 0 {
		t.nice = ownNice()
	}
	t.pid, t.stuck = c.pid, false
	if err := setGroupNice(c.pid, throttledNice); err != nil {
		t.lowered = false
		p.log.Warn("plugin goes over its Runtime call limit: its calls wait and its storage calls go one at a time, but its priority could not be lowered",
			"pid", c.pid, "limit_per_second", p.limits.Calls, "error", err)
		return
	}
	t.lowered = true
	p.log.Warn("plugin goes over its Runtime call limit: its calls wait, its storage calls go one at a time, and its processes run at the lowest CPU priority until it keeps within the limit",
		"pid", c.pid, "limit_per_second", p.limits.Calls, "calm", throttleCalm)
}

// throttleCheck ends the throttle once the plugin kept within its limit for
// throttleCalm, giving a lowered process its priority back; until then it
// lowers again what the process started since (threads and children take
// their creator's priority, but one made while it was being lowered may
// have been missed).
func (p *PluginProcess) throttleCheck() {
	p.mu.Lock()
	defer p.mu.Unlock()
	t := &p.throttle
	if since := time.Since(t.last); since < throttleCalm {
		if t.lowered && !t.stuck {
			_ = setGroupNice(t.pid, throttledNice)
		}
		t.timer.Reset(throttleCalm - since)
		return
	}
	t.timer = nil
	p.throttled.Store(false)
	if t.stuck {
		// Still low, and said so once.
		return
	}
	pid, lowered := t.pid, t.lowered
	t.pid, t.lowered = 0, false
	if !lowered {
		return
	}
	switch err := setGroupNice(pid, t.nice); {
	case err == nil:
		p.log.Info("plugin keeps within its Runtime call limit again; its CPU priority is back", "pid", pid)
	case errors.Is(err, syscall.ESRCH):
		// The process is gone; its successor starts at the usual priority.
	default:
		// Without CAP_SYS_NICE a priority cannot be raised again.
		p.log.Warn("plugin keeps within its Runtime call limit again, but its CPU priority cannot be raised back; it stays low until the process restarts",
			"pid", pid, "error", err)
		t.pid, t.lowered, t.stuck = pid, true, true
	}
}
