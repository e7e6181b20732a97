package reports

import "fmt"

// WriteAll writes every report format of r into dir and returns the files
// written. results.json comes first: every other format is made from it.
func WriteAll(dir string, r *Results) ([]string, error) {
	var written []string
	path, err := WriteJSON(dir, r)
	if err != nil {
		return nil, err
	}
	written = append(written, path)
	path, err = WriteJUnit(dir, r)
	if err != nil {
		return written, fmt.Errorf("after %v: %w", written, err)
	}
	return append(written, path), nil
}
