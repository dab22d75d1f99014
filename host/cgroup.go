package host

import (
	"bufio"
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
)

// cgroups bounds each plugin's processes with the kernel's pids
// controller, the one limit on processes that also holds for root: a cgroup
// per plugin under a cgroup of the daemon's, agenthost-PID-RANDOM, made in
// the daemon's own cgroup when the daemon may write there (cgroup v1's pids
// hierarchy, or a cgroup v2 tree delegated with the pids controller). When
// it may not, plugins fall back to RLIMIT_NPROC.
type cgroups struct {
	log  hclog.Logger
	once sync.Once
	base string // "" when unavailable
	v2   bool

	mu   sync.Mutex
	made map[string]bool
}

func (c *cgroups) available() bool {
	c.once.Do(c.setup)
	return c.base != ""
}

const cgroupPrefix = "agenthost-"

func (c *cgroups) setup() {
	parent, v2 := pidsCgroup()
	if parent == "" {
		return
	}
	removeStaleCgroups(parent)
	var b [4]byte
	_, _ = rand.Read(b[:])
	base := filepath.Join(parent, fmt.Sprintf("%s%d-%x", cgroupPrefix, os.Getpid(), b))
	if err := os.Mkdir(base, 0o755); err != nil {
		c.log.Debug("no pids cgroup for plugins; their processes are bounded per user", "parent", parent, "error", err)
		return
	}
	if v2 {
		if err := os.WriteFile(filepath.Join(base, "cgroup.subtree_control"), []byte("+pids"), 0); err != nil {
			_ = os.Remove(base)
			c.log.Debug("no pids cgroup for plugins", "error", err)
			return
		}
	}
	c.base, c.v2 = base, v2
	c.made = map[string]bool{}
}

// join makes (once) the plugin's cgroup with at most max tasks and returns
// its cgroup.procs file, which the plugin's trampoline joins; "" when
// there is no pids cgroup or no limit.
func (c *cgroups) join(plugin string, max uint64) string {
	if max == 0 || !c.available() {
		return ""
	}
	dir := filepath.Join(c.base, plugin)
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.made[plugin] {
		if err := os.Mkdir(dir, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
			c.log.Warn("could not make a plugin's pids cgroup; its processes are not bounded", "plugin", plugin, "error", err)
			return ""
		}
		if err := os.WriteFile(filepath.Join(dir, "pids.max"), []byte(strconv.FormatUint(max, 10)), 0); err != nil {
			c.log.Warn("could not bound a plugin's processes", "plugin", plugin, "error", err)
			return ""
		}
		c.made[plugin] = true
	}
	return filepath.Join(dir, "cgroup.procs")
}

// refusals is how many times the kernel refused a plugin's processes a
// new process or thread for its pids.max ("max" of pids.events); ok is
// false when the plugin has no pids cgroup.
func (c *cgroups) refusals(plugin string) (n int64, ok bool) {
	if !c.available() {
		return 0, false
	}
	c.mu.Lock()
	made := c.made[plugin]
	c.mu.Unlock()
	if !made {
		return 0, false
	}
	b, err := os.ReadFile(filepath.Join(c.base, plugin, "pids.events"))
	if err != nil {
		return 0, false
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, found := strings.CutPrefix(line, "max "); found {
			n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			return n, err == nil
		}
	}
	return 0, false
}

// remove deletes the daemon's cgroups once every plugin was stopped. A
// process a plugin started and moved out of its process group (setsid)
// outlives the group's kill, but not its cgroup: what is left in one is
// killed first.
func (c *cgroups) remove() {
	if c.base == "" {
		return
	}
	left := leftIn(c.base)
	for plugin, pids := range left {
		for _, pid := range pids {
			if c.log != nil {
				c.log.Warn("a process a plugin started outlived the plugin; killed", "plugin", plugin, "pid", pid)
			}
			killPID(pid)
		}
	}
	// A cgroup is removed once its last process has gone: a moment at
	// most.
	for deadline := time.Now().Add(500 * time.Millisecond); len(left) > 0 && time.Now().Before(deadline); left = leftIn(c.base) {
		time.Sleep(10 * time.Millisecond)
	}
	removeCgroupTree(c.base)
}

// leftIn lists the processes in the plugins' cgroups under base, by
// plugin; none is the daemon.
func leftIn(base string) map[string][]int {
	entries, _ := os.ReadDir(base)
	left := map[string][]int{}
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		b, _ := os.ReadFile(filepath.Join(base, e.Name(), "cgroup.procs"))
		for _, f := range strings.Fields(string(b)) {
			if pid, err := strconv.Atoi(f); err == nil && pid > 0 && pid != os.Getpid() {
				left[e.Name()] = append(left[e.Name()], pid)
			}
		}
	}
	return left
}

func removeCgroupTree(dir string) {
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if e.IsDir() {
			_ = os.Remove(filepath.Join(dir, e.Name()))
		}
	}
	_ = os.Remove(dir)
}

// removeStaleCgroups removes the cgroups of daemons that died without
// removing them (their plugins died with them).
func removeStaleCgroups(parent string) {
	entries, _ := os.ReadDir(parent)
	for _, e := range entries {
		rest, ok := strings.CutPrefix(e.Name(), cgroupPrefix)
		if !ok || !e.IsDir() {
			continue
		}
		pidText, _, _ := strings.Cut(rest, "-")
		if pid, err := strconv.Atoi(pidText); err == nil && pid > 0 && !processAlive(pid) {
			removeCgroupTree(filepath.Join(parent, e.Name()))
		}
	}
}

// pidsCgroup finds the daemon's own cgroup in a hierarchy with the pids
// controller that the daemon may make cgroups in: cgroup v1's pids
// hierarchy, or cgroup v2 where the daemon's cgroup hands pids down.
func pidsCgroup() (dir string, v2 bool) {
	own := map[string]string{} // controller ("" for v2) → path
	f, err := os.Open("/proc/self/cgroup")
	if err != nil {
		return "", false
	}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		parts := strings.SplitN(sc.Text(), ":", 3)
		if len(parts) != 3 {
			continue
		}
		for _, ctl := range strings.Split(parts[1], ",") {
			own[ctl] = parts[2]
		}
	}
	f.Close()
	mi, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return "", false
	}
	defer mi.Close()
	var v1Mount, v2Mount string
	sc = bufio.NewScanner(mi)
	for sc.Scan() {
		// ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTS ... - FSTYPE SOURCE SUPEROPTS
		fields := strings.Fields(sc.Text())
		sep := -1
		for i, f := range fields {
			if f == "-" {
				sep = i
				break
			}
		}
		if sep < 0 || sep+3 > len(fields) || len(fields) < 5 || fields[3] != "/" {
			continue
		}
		switch fields[sep+1] {
		case "cgroup":
			for _, o := range strings.Split(fields[sep+3], ",") {
				if o == "pids" {
					v1Mount = fields[4]
				}
			}
		case "cgroup2":
			v2Mount = fields[4]
		}
	}
	if p, ok := own["pids"]; ok && v1Mount != "" {
		dir = filepath.Join(v1Mount, p)
		if writable(dir) {
			return dir, false
		}
	}
	if p, ok := own[""]; ok && v2Mount != "" {
		dir = filepath.Join(v2Mount, p)
		ctl, err := os.ReadFile(filepath.Join(dir, "cgroup.subtree_control"))
		if err == nil && strings.Contains(" "+string(ctl)+" ", " pids") && writable(dir) {
			return dir, true
		}
	}
	return "", false
}

func writable(dir string) bool {
	info, err := os.Stat(dir)
	if err != nil || !info.IsDir() {
		return false
	}
	// Whether a cgroup may be made here is only known by trying; a folder
	// made and removed at once costs nothing.
	probe := filepath.Join(dir, fmt.Sprintf("%sprobe-%d", cgroupPrefix, os.Getpid()))
	if err := os.Mkdir(probe, 0o755); err != nil {
		return false
	}
	_ = os.Remove(probe)
	return true
}

// userTasks counts the processes and threads of this user now, for an
// RLIMIT_NPROC that leaves a plugin room for its own: the kernel counts
// every task of the user against it.
func userTasks() uint64 {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return 0
	}
	uid := strconv.Itoa(os.Getuid())
	var n uint64
	for _, e := range entries {
		if e.Name()[0] < '0' || e.Name()[0] > '9' {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "status"))
		if err != nil {
			continue
		}
		var mine bool
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "Uid:"); ok {
				f := strings.Fields(v)
				mine = len(f) > 0 && f[0] == uid
			}
			if v, ok := strings.CutPrefix(line, "Threads:"); ok && mine {
				t, _ := strconv.ParseUint(strings.TrimSpace(v), 10, 64)
				n += t
			}
		}
	}
	return n
}
