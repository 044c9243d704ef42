package secret

// Leak returns a function that says where a text shows 8 or more bytes of
// v in any encoding (see checker), for the sink tests of package secret_test.
func Leak(v string) func(string) string { return newChecker(v).leak }
