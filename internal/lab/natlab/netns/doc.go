// Package netns holds the small amount of Linux plumbing the NAT lab needs to
// reach into network namespaces from a Go process: running a function on an
// OS thread that has joined a namespace (sockets and TUN devices created there
// stay in that namespace after the thread leaves), opening a TUN device inside
// a namespace, and running ip(8)/nft(8) commands with their output attached to
// errors.
//
// Namespaces are the named ones that `ip netns add` creates under /run/netns,
// so that `ip netns list` and `ip netns exec` see them too.
//
// It is a separate package so that both natlab and the delayline root tests
// can use it without an import cycle.
package netns
