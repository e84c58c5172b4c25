//go:build race

package record

// raceEnabled says the tests run with -race, under which sync.Pool drops
// items at random: allocation counts are not measured then.
const raceEnabled = true
