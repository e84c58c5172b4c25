package kafkawire

import "sync"

// ClientSet shares Clients among the users of one cluster: Acquire returns
// the Client of a Config's Key, made on first use, and the last release of
// it closes the Client. The zero ClientSet is ready to use, and it is safe
// for concurrent use.
type ClientSet struct {
	mu      sync.Mutex
	clients map[string]*shared
}

// shared is one Client of a ClientSet and its number of holders.
type shared struct {
	c    *Client
	refs int
}

// Acquire returns the Client for cfg.Key(), making it with New(cfg) if
// the set holds none, and the function that releases this hold; the
// Client is closed when its last hold is released, failing its calls in
// flight with ErrClosed. Calling release more than once is safe. A Client
// made for an earlier Config of the same key keeps that Config's Logger
// and Observer. The error is New's.
func (s *ClientSet) Acquire(cfg Config) (c *Client, release func(), err error) {
	key := cfg.Key()
	s.mu.Lock()
	defer s.mu.Unlock()
	sh := s.clients[key]
	if sh == nil {
		c, err := New(cfg)
		if err != nil {
			return nil, nil, err
		}
		if s.clients == nil {
			s.clients = make(map[string]*shared)
		}
		sh = &shared{c: c}
		s.clients[key] = sh
	}
	sh.refs++
	var once sync.Once
	return sh.c, func() { once.Do(func() { s.release(key, sh) }) }, nil
}

// release drops one hold of sh, the Client of key, and closes it after the
// last.
func (s *ClientSet) release(key string, sh *shared) {
	s.mu.Lock()
	sh.refs--
	last := sh.refs == 0
	if last {
		delete(s.clients, key)
	}
	s.mu.Unlock()
	if last {
		sh.c.Close()
	}
}

// Len returns the number of Clients in the set.
func (s *ClientSet) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.clients)
}
