package wsframe

import "fmt"

// Bounds of Limits. An opening handshake with its required headers does not
// fit in less than MinHeader; past the maxima a single peer could make the
// parser hold more than a node should give one connection.
const (
	MinHeader  = 256
	MaxHeader  = 1 << 20 // 1 MiB
	MaxMessage = 1 << 30 // 1 GiB
)

// Limits bounds what a peer can make the parser hold: the HTTP request head
// (ParseRequest's maxHeader) and one data message (Decoder.MaxMessage). A
// zero field means its default.
type Limits struct {
	MaxHeader  int // request head in bytes, default DefaultMaxHeader (8 KiB), MinHeader to MaxHeader
	MaxMessage int // data message in bytes, default DefaultMaxMessage (1 MiB), at most MaxMessage
}

// DefaultLimits returns the default of every limit.
func DefaultLimits() Limits {
	return Limits{MaxHeader: DefaultMaxHeader, MaxMessage: DefaultMaxMessage}
}

// Validate reports the first limit out of its bounds, in one line that names
// it. Zero fields are valid: they take their defaults.
func (l Limits) Validate() error {
	switch {
	case l.MaxHeader < 0:
		return fmt.Errorf("wsframe: MaxHeader %d is negative", l.MaxHeader)
	case l.MaxHeader > 0 && l.MaxHeader < MinHeader:
		return fmt.Errorf("wsframe: MaxHeader %d is below %d bytes", l.MaxHeader, MinHeader)
	case l.MaxHeader > MaxHeader:
		return fmt.Errorf("wsframe: MaxHeader %d is above %d bytes", l.MaxHeader, MaxHeader)
	case l.MaxMessage < 0:
		return fmt.Errorf("wsframe: MaxMessage %d is negative", l.MaxMessage)
	case l.MaxMessage > MaxMessage:
		return fmt.Errorf("wsframe: MaxMessage %d is above %d bytes", l.MaxMessage, MaxMessage)
	}
	return nil
}
