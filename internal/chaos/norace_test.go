//go:build !race

package chaos

// raceEnabled says the tests run with -race, so the node is built with it too.
const raceEnabled = false
