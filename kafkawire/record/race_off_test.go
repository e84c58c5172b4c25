//go:build !race

package record

// raceEnabled says the tests run with -race (see race_on_test.go).
const raceEnabled = false
