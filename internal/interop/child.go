package interop

// serveChild runs this process as a peer when the environment asks for it
// (the NAT lab runs pion in a namespace that way); false otherwise.
func serveChild() bool { return false }
