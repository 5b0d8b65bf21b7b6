//go:build race

package ringtest_test

// raceDetector is true under the race detector, which makes every run
// several times slower: TestRandomFaults then runs fewer seeds by default.
const raceDetector = true
