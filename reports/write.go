package reports

// WriteAll writes every report format of r into dir (results.json first:
// every other format is made from it), then the digest manifest, and
// returns the files written.
func WriteAll(dir string, r *Results) ([]string, error) {
	return Render(r, dir, RenderOptions{})
}
