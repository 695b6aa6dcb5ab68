package online

import "errors"

// Sentinel errors returned by this package. Returned errors may wrap these
// with additional detail, so compare them with [errors.Is].
var (
	// ErrNonFinite is returned when a NaN or ±Inf observation is offered to
	// a [Moments] accumulator. The accumulator is left unchanged.
	ErrNonFinite = errors.New("online: non-finite observation")

	// ErrInvalidMoments is returned by [MomentsFromRaw] and
	// [RawMoments.Validate] when a raw moment tuple cannot have been produced
	// by any sequence of finite observations (negative count, negative M2 or
	// M4, non-finite fields, or non-zero fields with a zero count).
	ErrInvalidMoments = errors.New("online: invalid raw moments")

	// ErrInvalidLayout is returned by [NewFloatHistogram] and
	// [FloatLayout.Validate] for an unusable bin layout.
	ErrInvalidLayout = errors.New("online: invalid histogram layout")

	// ErrLayoutMismatch is returned by [FloatHistogram.Merge] when the two
	// histograms do not have identical layouts.
	ErrLayoutMismatch = errors.New("online: histogram layouts differ")
)
