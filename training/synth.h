// Synthetic detection data: solid shapes (ellipse, rectangle, triangle, star, cross) at varied
// scales, aspect ratios, rotations and colours, with partial overlaps, on textured backgrounds
// (colour gradient + low-frequency colour blotches + blurred spots + random lines + pixel
// noise), so a detector must localise and classify rather than find "the non-flat pixels".
//
// Deterministic from a seed: only std::mt19937's raw outputs and the distributions in rng.h
// are used, and drawing is non-antialiased OpenCV (LINE_8), so the same seed gives the same
// pixels (and the same PNG/JPEG bytes with the same OpenCV build).
//
// Ground truth: each object's box is the tight box of its VISIBLE drawn pixels (a later shape
// may cover at most SynthOptions::max_occlusion of an earlier one), corners in pixels with
// x2/y2 exclusive: box = [x1, x2) x [y1, y2) of the pixel grid. Per-pixel noise is added after
// the shapes, so shapes are noisy too but keep their extent.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include <opencv2/core.hpp>

#include "dataset.h"

namespace ssdtrain {

struct SynthOptions {
  int min_objects = 1, max_objects = 4;
  // Shape's longer side before rotation / image's shorter side. A rotated shape's box can be
  // up to ~1.4x that (a square at 45 degrees), an occluded one smaller.
  double min_size = 0.10, max_size = 0.60;
  double max_aspect = 2.0;                  // width:height (or height:width) up to this
  double max_rotation_deg = 45.0;           // each shape turned by U(-max, max)
  double max_occlusion = 0.35;              // fraction of a shape later shapes may cover
  bool textured_background = true;          // false: one flat colour (tests)
  double noise = 12.0;                      // per-pixel noise amplitude (0..255 scale), 0: none
  // Fraction of images with no object (negatives: what a detector must leave alone). Each is
  // one of three backgrounds, chosen evenly: the textured one, one flat colour (a third of these
  // grey: half of those black or white), or a plain two-colour gradient. So that a plain
  // background is no cue for "nothing here", any fraction above 0 changes the images with objects
  // too: half of them take a flat (a third) or gradient (a sixth) background, a quarter of their
  // shapes stand upright (no rotation), and the pixel noise amplitude of every image is drawn in
  // [0, noise]. 0 (the default) draws nothing more from an image's seed: every set made without
  // it keeps its pixels.
  double empty_fraction = 0.0;
};

// The class names, label index order.
const std::vector<std::string>& synth_class_names();

struct SynthSample {
  cv::Mat image;                     // CV_8UC3, BGR (like cv::imread), width x height
  std::vector<BoxAnnotation> boxes;  // tight visible boxes, labels index synth_class_names()
  cv::Mat owner;                     // CV_8U: 0 background, k + 1 where object k is visible
};

// Renders one image in memory. Throws DataError for a size below 32x32 or bad options.
SynthSample render_synth_image(int width, int height, uint64_t seed,
                               const SynthOptions& options = {});

struct SynthDatasetOptions {
  int count = 1000;
  int width = 224, height = 224;
  uint64_t seed = 0;
  std::string format = "jpg";  // "jpg" or "png"
  int jpeg_quality = 95;
  SynthOptions synth;
};

// Writes <dir>/images/000000.<format> ... and <dir>/annotations.json (COCO, as load_coco
// reads it; image i is rendered with seed derive_seed(seed, i)). Returns the dataset with
// absolute image paths. Throws DataError when a file cannot be written. Takes the folder's lock
// exclusively (lock_synth_folder) and keeps it so: a caller that completes the set with a file of
// its own (ssd-train's synth.json marker) shares it after that.
Dataset write_synth_dataset(const std::string& dir, const SynthDatasetOptions& options);

// A synthetic set's folder is shared by the processes that use it (runs given one --synth-dir):
// each holds a shared lock (flock(2)) on its images/ folder for as long as it lives, and one that
// writes the set anew holds it exclusively, so that no set is written over while another process
// trains or evaluates on it (its images would no longer fit its labels). Locks are kept per
// folder for the life of the process (one ssd-train command; a test process loading a folder
// again converts its own lock). Throws ssd::Error naming the folder when another process holds
// it otherwise.
void lock_synth_folder(const std::filesystem::path& images, bool exclusive);

}  // namespace ssdtrain
