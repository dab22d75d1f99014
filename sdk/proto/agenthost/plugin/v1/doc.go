// Package pluginv1 is the Go code generated from the agenthost.plugin.v1
// protocol in this folder (`make proto` regenerates it). Plugin authors use
// package sdk instead; the host and the SDK's shims speak this.
package pluginv1
