// Data augmentation for detection with OpenCV: boxes always move with the pixels.
// Every random choice comes from the Rng passed in (the loader seeds one per sample from
// (epoch seed, image index)), so results do not depend on thread scheduling.
//
// augment() applies, in order (each step optional, see AugmentOptions):
//   1. lighting: contrast c ~ U(1-contrast, 1+contrast), brightness b ~ U(-brightness,
//      brightness): p' = (p/255 - 0.5) * c + 0.5 + b, per pixel, all channels;
//   2. SSD zoom-out ("expand"): the image is placed at a random spot of a canvas up to
//      max_zoom_out times larger, filled with the mean colour; boxes shift;
//   3. rotation by U(-max_rotate_deg, max_rotate_deg) about the image centre (same canvas,
//      corners filled with the mean colour). A box becomes the bounding box of its four rotated
//      corners, clipped to the image: exact for the pixels it held, but looser than the object
//      (an axis-aligned box turned by t degrees grows by up to a factor |cos t| + |sin t|), so
//      large rotations inflate boxes: keep max_rotate_deg small (default 10);
//   4. SSD random crop: a min-IoU in {none, 0.1, 0.3, 0.5, 0.7, 0.9} is drawn; crops with side
//      0.3..1 of the image and aspect 0.5..2 are tried until one has IoU >= min-IoU with some
//      target box and keeps at least one target; boxes whose centre is inside the crop are
//      kept and clipped, others dropped; a box marked ignore keeps whatever part of it the
//      crop holds (clipped), so that the anchors on that part stay out of the class loss;
//   5. horizontal flip with probability 0.5;
//   6. squish resize to size x size (aspect not kept; INTER_AREA when both sides shrink,
//      INTER_LINEAR otherwise), boxes scaled.
// Images are CV_8UC3 RGB here (the loader converts BGR -> RGB after cv::imread).
#pragma once

#include <array>
#include <vector>

#include <opencv2/core.hpp>

#include "dataset.h"
#include "rng.h"

namespace ssdtrain {

struct Sample {
  cv::Mat image;                     // CV_8UC3, RGB
  std::vector<BoxAnnotation> boxes;  // pixel corners in `image`
};

struct AugmentOptions {
  bool flip = true;
  double rotate_prob = 0.5;
  double max_rotate_deg = 10.0;
  double lighting_prob = 0.75;
  double brightness = 0.1;  // +- fraction of full scale
  double contrast = 0.2;    // +- fraction
  double zoom_out_prob = 0.3;
  double max_zoom_out = 2.0;  // canvas side / image side, >= 1
  double crop_prob = 0.5;
  double min_crop_side = 0.3;  // fraction of the image side
};

// Individual transforms (deterministic ones take their parameters).
void hflip(Sample& s);
// Rotates by `degrees` (counter-clockwise, as cv::getRotationMatrix2D) about the centre.
// Boxes whose clipped rotated box has no area are dropped.
void rotate(Sample& s, double degrees, const cv::Scalar& fill);
void adjust_lighting(Sample& s, double contrast, double brightness);
// Places the image at (left, top) of a canvas_w x canvas_h canvas filled with `fill`.
void zoom_out(Sample& s, int canvas_w, int canvas_h, int left, int top, const cv::Scalar& fill);
// Crops to `roi` (must lie inside the image): keeps boxes whose centre lies inside, clipped,
// and boxes marked ignore that overlap it, clipped.
void crop(Sample& s, const cv::Rect& roi);
// Squish-resizes to size x size (see the header comment for the interpolation rule).
void squish_resize(Sample& s, int size);

// SSD random crop as described above; returns false (sample unchanged) when no crop was found.
bool random_ssd_crop(Sample& s, Rng& rng, double min_side = 0.3);

// All of the above, in order; ends with squish_resize(size). `mean` (RGB, [0,1]) is the fill.
void augment(Sample& s, int size, const AugmentOptions& options, Rng& rng,
             const std::array<float, 3>& mean);

// RGB CV_8UC3 (size x size) -> CHW floats ((p/255 - mean[c]) / std[c]) written at `out`.
void to_chw_normalised(const cv::Mat& rgb, const std::array<float, 3>& mean,
                       const std::array<float, 3>& std, float* out);

}  // namespace ssdtrain
