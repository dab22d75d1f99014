package host

// oneCPU keeps the daemon's threads and its plugins' on one CPU while the
// daemon runs its Go code on one thread (procGovernor), and gives them
// back every CPU they may use once two messages are in flight.
//
// A message handled alone hops between four processes about fifteen
// times, each waking the next over a socket. Woken on another CPU, a
// process costs that CPU an interrupt and starts with cold caches; on the
// 2-core virtual machine agenthost is measured on, those wake-ups were
// the largest item of every process's kernel time. Measured in alternated
// pairs of 250–300 messages sent one at a time: beside a process taking
// 30% of a core (as an idle elizaOS does in the side-by-side runs), the
// whole tree took 14–18% less CPU per message and answered 8–12% sooner at
// the p50, in all 7 pairs; on an otherwise quiet machine the CPU fell by a
// fifth and the p50 by a seventh in 4 of 6 pairs, and both moved within
// the noise in the others. The model server and the clients keep the
// other CPUs, where the kernel moves them.
//
// The CPU is the one the daemon is on when it goes to one thread, among
// those it was allowed when it started (an operator's taskset or cpuset
// holds). A process the daemon did not start (an attached plugin) is left
// alone.
type oneCPU struct {
	// allowed is the daemon's CPU mask when it started: what going back
	// to every CPU restores.
	allowed cpuMask
	// first is the lowest CPU allowed, where the threads go when the
	// daemon's own CPU cannot be read or is not allowed.
	first int
	// pids lists the plugin processes to move along with the daemon.
	pids func() []int
	// failed reports a process whose threads could not all be moved; a
	// process that exited meanwhile is not a failure.
	failed func(pid int, err error)
}
