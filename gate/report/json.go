package report

import (
	"github.com/pregate/pregate/gate"
	"github.com/pregate/pregate/gate/pipeline"
	"github.com/pregate/pregate/render"
	"github.com/pregate/pregate/verify"
)

// The JSON documents; docs/output.md is their schema.

// verdict is the JSON report of a check: kind Verdict.
type verdict struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	gate.Verdict
	Sources []source  `json:"sources"`
	Skipped []skipped `json:"skipped"`
}

// imageList is the JSON report of a rendering: kind ImageList.
type imageList struct {
	APIVersion     string                 `json:"apiVersion"`
	Kind           string                 `json:"kind"`
	Source         source                 `json:"source"`
	Images         []render.Image         `json:"images"`
	Kustomizations []render.Kustomization `json:"kustomizations"`
	HelmReleases   []render.HelmRelease   `json:"helmReleases"`
	Gaps           []render.Gap           `json:"gaps"`
	Skipped        []skipped              `json:"skipped"`
}

// explanation is the JSON report of explain: kind Explanation.
type explanation struct {
	APIVersion string            `json:"apiVersion"`
	Kind       string            `json:"kind"`
	Image      string            `json:"image"`
	Verdict    gate.ImageVerdict `json:"verdict"`
	Allowed    bool              `json:"allowed"`
	Undecided  bool              `json:"undecided"`
	Retry      bool              `json:"retry"`
	Results    []verify.Result   `json:"results"`
	// Admission are the admission policies' predicted answers for the
	// image (--admission-policy).
	Admission []gate.Admission `json:"admission,omitempty"`
}

type source struct {
	Root          string `json:"root"`
	Path          string `json:"path"`
	Revision      string `json:"revision,omitempty"`
	SourceRef     string `json:"sourceRef"`
	SourceRefFrom string `json:"sourceRefFrom,omitempty"`
}

type skipped struct {
	Path   string `json:"path"`
	Reason string `json:"reason"`
}

func verdictDocument(res *pipeline.Result) verdict {
	doc := verdict{APIVersion: APIVersion, Kind: "Verdict", Verdict: res.Verdict, Sources: []source{}, Skipped: []skipped{}}
	seen := map[string]bool{}
	for _, r := range res.Renders {
		doc.Sources = append(doc.Sources, sourceOf(r))
		if !seen[r.Source] { // a source's tree is listed once, however many paths
			seen[r.Source] = true
			doc.Skipped = append(doc.Skipped, skippedOf(r)...)
		}
	}
	return doc
}

func imagesDocument(r pipeline.Rendered) imageList {
	return imageList{
		APIVersion:     APIVersion,
		Kind:           "ImageList",
		Source:         sourceOf(r),
		Images:         r.Images,
		Kustomizations: r.Kustomizations,
		HelmReleases:   r.HelmReleases,
		Gaps:           r.Gaps,
		Skipped:        skippedOf(r),
	}
}

func explanationDocument(res *pipeline.Result) explanation {
	v := res.Verdict
	return explanation{
		APIVersion: APIVersion, Kind: "Explanation", Image: v.Images[0].Ref, Verdict: v.Images[0],
		Allowed: v.Allowed, Undecided: v.Undecided, Retry: v.Retry, Results: res.Results, Admission: v.Admission,
	}
}

func sourceOf(r pipeline.Rendered) source {
	return source{Root: r.Root, Path: r.Path, Revision: r.Revision, SourceRef: r.Ref.String(), SourceRefFrom: r.RefFrom}
}

func skippedOf(r pipeline.Rendered) []skipped {
	out := make([]skipped, 0, len(r.Skipped))
	for _, s := range r.Skipped {
		out = append(out, skipped{Path: s.Path, Reason: s.Reason})
	}
	return out
}
