package apisweep

// Harmless is the safety guard, for the external tests that check every
// planned positive control passes it.
var Harmless = harmless
