// Tests of ssd-train's data side: COCO/VOC readers, synthetic data, augmentation, loader.
#include <gtest/gtest.h>

#include "../child_process.h"
#include "../temp_dir.h"

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <set>
#include <sstream>
#include <string>

#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>
#include <vector>

#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "../../training/atomic_file.h"
#include "../../training/augment.h"
#include "../../training/coco.h"
#include "../../training/loader.h"
#include "../../training/rng.h"
#include "../../training/synth.h"
#include "../../training/voc.h"

namespace fs = std::filesystem;
using namespace ssdtrain;

namespace {

using ssdtest::TempDir;

void write_text(const fs::path& p, const std::string& text) {
  fs::create_directories(p.parent_path());
  std::ofstream f(p, std::ios::binary);
  f << text;
}

std::string read_bytes(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  std::ostringstream os;
  os << f.rdbuf();
  return os.str();
}

void write_image(const fs::path& p, int w, int h) {
  fs::create_directories(p.parent_path());
  cv::Mat m(h, w, CV_8UC3, cv::Scalar(10, 20, 30));
  ASSERT_TRUE(cv::imwrite(p.string(), m));
}

// Runs f, expects a DataError whose message contains every one of `parts`.
template <typename F>
void expect_data_error(F&& f, const std::vector<std::string>& parts) {
  try {
    f();
    FAIL() << "no exception thrown";
  } catch (const DataError& e) {
    const std::string msg = e.what();
    for (const auto& p : parts) EXPECT_NE(msg.find(p), std::string::npos) << "message: " << msg << "\nmissing: " << p;
  }
}

// A valid tiny COCO dataset: categories listed with ids 7 then 3.
const char* kCocoImages = R"("images": [
    {"file_name": "a.png", "height": 40, "width": 60, "id": 12},
    {"file_name": "b.png", "height": 50, "width": 30, "id": 5}])";
const char* kCocoCategories = R"("categories": [
    {"supercategory": "none", "id": 7, "name": "car"},
    {"supercategory": "none", "id": 3, "name": "bird"}])";

std::string coco_json(const std::string& annotations) {
  return std::string("{") + kCocoImages + ", \"type\": \"instances\", \"annotations\": " +
         annotations + ", " + kCocoCategories + "}";
}

struct CocoFixture {
  TempDir dir;
  CocoFixture() {
    write_image(dir.path() / "img" / "a.png", 60, 40);
    write_image(dir.path() / "img" / "b.png", 30, 50);
  }
  std::string write(const std::string& annotations) {
    const std::string p = dir.str("train.json");
    write_text(p, coco_json(annotations));
    return p;
  }
  CocoOptions opts() const {
    CocoOptions o;
    o.image_dir = dir.str("img");
    return o;
  }
};

}  // namespace

// ------------------------------------------------------------------------------------ COCO

TEST(Coco, LoadsValidFile) {
  CocoFixture fx;
  const std::string p = fx.write(R"([
    {"bbox": [10, 5, 20, 15], "category_id": 3, "image_id": 12, "ignore": 0, "iscrowd": 0, "id": 1, "area": 212.5},
    {"bbox": [50, 30, 20, 20], "category_id": 7, "image_id": 12, "ignore": 1, "id": 2},
    {"bbox": [1, 2, 3, 4], "category_id": 7, "image_id": 5, "iscrowd": 1, "id": 3},
    {"bbox": [0, 0, 5, 0], "category_id": 7, "image_id": 5, "id": 4},
    {"bbox": [-4, 10, 14.5, 10], "category_id": 3, "image_id": 5, "id": 5}])");
  LoadReport rep;
  const Dataset ds = load_coco(p, fx.opts(), &rep);
  ASSERT_EQ(ds.labels, (std::vector<std::string>{"car", "bird"}));
  ASSERT_EQ(ds.images.size(), 2u);
  const ImageRecord& a = ds.images[0];
  EXPECT_EQ(a.id, 12);
  EXPECT_EQ(a.width, 60);
  EXPECT_EQ(a.height, 40);
  EXPECT_EQ(fs::path(a.path), fs::path(fx.dir.str("img")) / "a.png");
  ASSERT_EQ(a.boxes.size(), 2u);
  EXPECT_FLOAT_EQ(a.boxes[0].x1, 10);
  EXPECT_FLOAT_EQ(a.boxes[0].y1, 5);
  EXPECT_FLOAT_EQ(a.boxes[0].x2, 30);
  EXPECT_FLOAT_EQ(a.boxes[0].y2, 20);
  EXPECT_EQ(a.boxes[0].label, 1);  // category 3 = second in categories
  EXPECT_FALSE(a.boxes[0].ignore);
  EXPECT_FLOAT_EQ(a.boxes[0].area, 212.5f);   // COCO's "area" (the object's), kept for evaluation
  EXPECT_FLOAT_EQ(a.boxes[1].area, -1);       // none given: the box's
  // Partly outside (50..70 on a 60-wide image): clipped, and marked ignore.
  EXPECT_FLOAT_EQ(a.boxes[1].x2, 60);
  EXPECT_FLOAT_EQ(a.boxes[1].y2, 40);
  EXPECT_EQ(a.boxes[1].label, 0);
  EXPECT_TRUE(a.boxes[1].ignore);
  const ImageRecord& b = ds.images[1];
  ASSERT_EQ(b.boxes.size(), 2u);  // the zero-area box is skipped
  EXPECT_TRUE(b.boxes[0].ignore);  // iscrowd
  EXPECT_FLOAT_EQ(b.boxes[1].x1, 0);  // clipped from -4
  EXPECT_FLOAT_EQ(b.boxes[1].x2, 10.5f);
  EXPECT_EQ(rep.skipped_annotations, 1);
  ASSERT_EQ(rep.warnings.size(), 1u);
  EXPECT_NE(rep.warnings[0].find("annotations[3]"), std::string::npos) << rep.warnings[0];
  EXPECT_EQ(ds.num_boxes(), 4u);
  EXPECT_EQ(ds.num_boxes(false), 2u);
}

// A coordinate beyond float's range (1e300) is clipped to the image as any other, not taken
// for infinity and the box skipped as empty; an area beyond it stays a (huge) area.
TEST(Coco, HugeCoordinatesAreClippedToTheImage) {
  CocoFixture fx;
  const std::string p = fx.write(R"([
    {"bbox": [2, 3, 1e300, 1e300], "category_id": 3, "image_id": 12, "id": 1, "area": 1e300},
    {"bbox": [-1e300, 0, 2e300, 1e300], "category_id": 3, "image_id": 12, "id": 2},
    {"bbox": [1, 1, 2, 2], "category_id": 3, "image_id": 5, "id": 3}])");
  LoadReport rep;
  const Dataset ds = load_coco(p, fx.opts(), &rep);
  ASSERT_EQ(ds.images.size(), 2u);
  ASSERT_EQ(ds.images[0].boxes.size(), 2u);
  const BoxAnnotation& b = ds.images[0].boxes[0];
  EXPECT_FLOAT_EQ(b.x1, 2);
  EXPECT_FLOAT_EQ(b.y1, 3);
  EXPECT_FLOAT_EQ(b.x2, 60);
  EXPECT_FLOAT_EQ(b.y2, 40);
  EXPECT_FLOAT_EQ(b.area, 1e30f);
  const BoxAnnotation& whole = ds.images[0].boxes[1];
  EXPECT_FLOAT_EQ(whole.x1, 0);
  EXPECT_FLOAT_EQ(whole.x2, 60);
  EXPECT_EQ(rep.skipped_annotations, 0);
}

TEST(Coco, DefaultImageDirIsJsonFolder) {
  TempDir dir;
  write_image(dir.path() / "a.png", 60, 40);
  write_image(dir.path() / "b.png", 30, 50);
  write_text(dir.path() / "t.json",
             coco_json(R"([{"bbox": [1, 1, 5, 5], "category_id": 7, "image_id": 5}])"));
  const Dataset ds = load_coco(dir.str("t.json"));
  EXPECT_EQ(fs::path(ds.images[1].path), dir.path() / "b.png");
  EXPECT_TRUE(ds.images[0].boxes.empty());  // kept as a negative
  CocoOptions o;
  o.skip_unannotated = true;
  LoadReport rep;
  const Dataset ds2 = load_coco(dir.str("t.json"), o, &rep);
  ASSERT_EQ(ds2.images.size(), 1u);
  EXPECT_EQ(ds2.images[0].id, 5);
  EXPECT_EQ(rep.skipped_images, 1);
}

// File names that lead outside the image folder (../.., an absolute path) are read where they
// point, and warned about once with a count, naming the first: a data set from elsewhere could
// name any picture its user may read. Names in subfolders of it are not.
TEST(Coco, NamesOutsideTheImageFolderAreWarnedAbout) {
  TempDir dir;
  write_image(dir.path() / "img" / "sub" / "a.png", 60, 40);
  write_image(dir.path() / "secret.png", 30, 50);
  std::string images = std::string(kCocoImages);
  const auto put = [&](const std::string& from, const std::string& to) { images.replace(images.find(from), from.size(), to); };
  put("\"a.png\"", "\"sub/./a.png\"");
  put("\"b.png\"", "\"sub/../../secret.png\"");
  CocoOptions o;
  o.image_dir = dir.str("img");
  const auto load = [&](const std::string& json_images) {
    write_text(dir.path() / "t.json", "{" + json_images + R"(, "annotations": [], )" + kCocoCategories + "}");
    LoadReport rep;
    const Dataset ds = load_coco(dir.str("t.json"), o, &rep);
    EXPECT_EQ(ds.images.size(), 2u);
    return rep.warnings;
  };
  auto warnings = load(images);
  ASSERT_EQ(warnings.size(), 1u);
  EXPECT_NE(warnings[0].find("t.json: 1 image file name(s) lead outside " + dir.str("img") +
                             " (the first: images[1] 'sub/../../secret.png'): they are read where they point"),
            std::string::npos) << warnings[0];
  put("\"sub/./a.png\"", "\"" + dir.str("secret.png") + "\"");
  put("\"sub/../../secret.png\"", "\"sub/a.png\"");
  warnings = load(images);
  ASSERT_EQ(warnings.size(), 1u);
  EXPECT_NE(warnings[0].find("(the first: images[0] '" + dir.str("secret.png") + "')"), std::string::npos) << warnings[0];
  put("\"" + dir.str("secret.png") + "\"", "\"sub/../sub/a2.png\"");
  write_image(dir.path() / "img" / "sub" / "a2.png", 60, 40);
  EXPECT_TRUE(load(images).empty());
}

// ssd-train synth's layout (annotations.json beside images/) loads without an image folder, as
// README's `lr-find --coco data/shapes/annotations.json` does; images beside the JSON file win;
// images in neither place name both.
TEST(Coco, DefaultImageDirFallsBackToImagesSubfolder) {
  TempDir dir;
  write_image(dir.path() / "images" / "a.png", 60, 40);
  write_image(dir.path() / "images" / "b.png", 30, 50);
  const std::string json = coco_json(R"([{"bbox": [1, 1, 5, 5], "category_id": 7, "image_id": 5}])");
  write_text(dir.path() / "t.json", json);
  const Dataset ds = load_coco(dir.str("t.json"));
  EXPECT_EQ(fs::path(ds.images[0].path), dir.path() / "images" / "a.png");
  EXPECT_EQ(fs::path(ds.images[1].path), dir.path() / "images" / "b.png");

  // Each image on its own: a stray copy of the first beside the JSON file decides nothing for
  // the second.
  write_image(dir.path() / "a.png", 60, 40);
  const Dataset stray = load_coco(dir.str("t.json"));
  EXPECT_EQ(fs::path(stray.images[0].path), dir.path() / "a.png");
  EXPECT_EQ(fs::path(stray.images[1].path), dir.path() / "images" / "b.png");
  write_image(dir.path() / "b.png", 30, 50);
  EXPECT_EQ(fs::path(load_coco(dir.str("t.json")).images[1].path), dir.path() / "b.png");

  TempDir none;
  write_text(none.path() / "t.json", json);
  fs::create_directories(none.path() / "images");
  expect_data_error([&] { load_coco(none.str("t.json")); },
                    {"t.json: images[0]", "not found", "a.png", "beside the JSON file and in its images/"});
  // An image folder that was given is the only place looked in.
  CocoOptions o;
  o.image_dir = none.str("images");
  try {
    load_coco(dir.str("t.json"), o);
    ADD_FAILURE() << "no DataError";
  } catch (const DataError& e) {
    EXPECT_EQ(std::string(e.what()).find("beside the JSON"), std::string::npos) << e.what();
  }

  const Dataset synth = [&] {
    SynthDatasetOptions so;
    so.count = 2;
    so.width = so.height = 64;
    write_synth_dataset(none.str("s"), so);
    return load_coco(none.str("s/annotations.json"));
  }();
  ASSERT_EQ(synth.images.size(), 2u);
  EXPECT_EQ(fs::path(synth.images[1].path).parent_path(), none.path() / "s" / "images");
}

TEST(Coco, MalformedJson) {
  CocoFixture fx;
  const std::string p = fx.dir.str("bad.json");
  write_text(p, "{\"images\": [ {\"file_name\": \"a.png\", ");
  expect_data_error([&] { load_coco(p, fx.opts()); }, {"bad.json", "malformed JSON"});
  write_text(p, "[1, 2]");
  expect_data_error([&] { load_coco(p, fx.opts()); }, {"bad.json", "not a JSON object"});
  // Nested 100,000 deep: an error, not a stack overflow in nlohmann's recursive copy.
  write_text(p, "{\"images\": " + std::string(100000, '[') + std::string(100000, ']') + "}");
  expect_data_error([&] { load_coco(p, fx.opts()); }, {"bad.json", "nested deeper than 64 levels"});
  expect_data_error([&] { load_coco(fx.dir.str("nope.json"), fx.opts()); }, {"nope.json", "cannot open"});
}

TEST(Coco, UnknownCategory) {
  CocoFixture fx;
  const std::string p = fx.write(R"([
    {"bbox": [10, 5, 20, 15], "category_id": 3, "image_id": 12},
    {"bbox": [10, 5, 20, 15], "category_id": 99, "image_id": 12}])");
  expect_data_error([&] { load_coco(p, fx.opts()); },
                    {"train.json: annotations[1]: category_id 99 is not in categories"});
}

TEST(Coco, UnknownImageAndMissingFields) {
  CocoFixture fx;
  std::string p = fx.write(R"([{"bbox": [1, 1, 2, 2], "category_id": 3, "image_id": 77}])");
  expect_data_error([&] { load_coco(p, fx.opts()); },
                    {"train.json: annotations[0]: image_id 77 is not in images"});
  p = fx.write(R"([{"category_id": 3, "image_id": 12}])");
  expect_data_error([&] { load_coco(p, fx.opts()); }, {"train.json: annotations[0]", "bbox"});
  p = fx.write(R"([{"bbox": [1, 1, 2], "category_id": 3, "image_id": 12}])");
  expect_data_error([&] { load_coco(p, fx.opts()); }, {"annotations[0]", "4 numbers"});
  p = fx.write(R"([{"bbox": [1, 1, -2, 2], "category_id": 3, "image_id": 12}])");
  expect_data_error([&] { load_coco(p, fx.opts()); }, {"annotations[0]", "negative"});
  p = fx.write(R"([{"bbox": [1, 1, 2, 2], "category_id": "3", "image_id": 12}])");
  expect_data_error([&] { load_coco(p, fx.opts()); }, {"annotations[0]", "category_id"});
  p = fx.write(R"([{"bbox": [1, 1, 2, 2], "category_id": 3, "image_id": 12, "area": -4}])");
  expect_data_error([&] { load_coco(p, fx.opts()); }, {"annotations[0]", "area"});
  p = fx.write(R"([{"bbox": [1, 1, 2, 2], "category_id": 3, "image_id": 12, "area": "4"}])");
  expect_data_error([&] { load_coco(p, fx.opts()); }, {"annotations[0]", "area"});
}

// Classes are known by name (a model's labels, eval lining a data set up with a model): two
// categories of one name would be merged, their boxes scored against one id.
TEST(Coco, DuplicateCategoryName) {
  CocoFixture fx;
  const std::string p = fx.dir.str("train.json");
  write_text(p, std::string("{") + kCocoImages + R"(, "annotations": [{"bbox": [1, 1, 2, 2], "category_id": 3, "image_id": 12}],
    "categories": [{"id": 7, "name": "car"}, {"id": 3, "name": "bird"}, {"id": 11, "name": "car"}]})");
  expect_data_error([&] { load_coco(p, fx.opts()); },
                    {"train.json: categories[2]", "category name 'car' is also category id 7's"});
}

// What merging annotators' exports leaves: one picture under two ids (each would hold part of its
// boxes, training the rest as background, and eval would count it twice), an empty class name,
// an id beyond int64 (it wrapped to -1 in --detections), annotations sharing an id (pycocotools
// keeps one of them: a warning, as ssd-train does not need the ids).
TEST(Coco, MergedFilesMistakes) {
  CocoFixture fx;
  const std::string p = fx.dir.str("train.json");
  const std::string ann = R"("annotations": [{"bbox": [1, 1, 2, 2], "category_id": 3, "image_id": 12}])";
  write_text(p, std::string("{") + R"("images": [
    {"file_name": "a.png", "height": 40, "width": 60, "id": 12},
    {"file_name": "b.png", "height": 50, "width": 30, "id": 5},
    {"file_name": "./a.png", "height": 40, "width": 60, "id": 1012}], )" + ann + ", " + kCocoCategories + "}");
  expect_data_error([&] { load_coco(p, fx.opts()); },
                    {"train.json: images[2]: file_name './a.png' is also images[0]'s (id 12)"});
  write_text(p, std::string("{") + kCocoImages + ", " + ann + R"(, "categories": [{"id": 3, "name": ""}]})");
  expect_data_error([&] { load_coco(p, fx.opts()); }, {"train.json: categories[0]: empty category name"});
  write_text(p, std::string("{") + R"("images": [{"file_name": "a.png", "height": 40, "width": 60,
    "id": 18446744073709551615}], )" + ann + ", " + kCocoCategories + "}");
  expect_data_error([&] { load_coco(p, fx.opts()); },
                    {"train.json: images[0]: field 'id' is out of range (above 2^63 - 1): 18446744073709551615"});
  write_text(p, std::string("{") + R"("images": [{"file_name": "a.png", "height": 40, "width": 60,
    "id": 9223372036854775807}], "annotations": [{"bbox": [1, 1, 2, 2], "category_id": 3,
    "image_id": 9223372036854775807}], )" + kCocoCategories + "}");
  EXPECT_EQ(load_coco(p, fx.opts()).images.at(0).id, INT64_MAX);
  LoadReport report;
  const Dataset ds = load_coco(fx.write(R"([
    {"bbox": [1, 1, 2, 2], "category_id": 3, "image_id": 12, "id": 4},
    {"bbox": [3, 1, 2, 2], "category_id": 3, "image_id": 12, "id": 9},
    {"bbox": [5, 1, 2, 2], "category_id": 7, "image_id": 5, "id": 4},
    {"bbox": [7, 1, 2, 2], "category_id": 7, "image_id": 5, "id": 9}])"),
                               fx.opts(), &report);
  EXPECT_EQ(ds.num_boxes(), 4u);
  ASSERT_EQ(report.warnings.size(), 1u);
  EXPECT_NE(report.warnings[0].find("train.json: 2 annotation(s) share an id with an earlier one (annotations[2] "
                                    "has id 4, as annotations[0] does): pycocotools"),
            std::string::npos)
      << report.warnings[0];
  EXPECT_EQ(report.skipped_annotations, 0);
}

TEST(Coco, MissingImage) {
  CocoFixture fx;
  fs::remove(fx.dir.path() / "img" / "b.png");
  const std::string p = fx.write(R"([{"bbox": [1, 1, 2, 2], "category_id": 3, "image_id": 12}])");
  expect_data_error([&] { load_coco(p, fx.opts()); }, {"train.json: images[1]", "not found", "b.png"});
}

TEST(Coco, BoxOutsideImage) {
  CocoFixture fx;
  const std::string p = fx.write(R"([
    {"bbox": [1, 1, 2, 2], "category_id": 3, "image_id": 12},
    {"bbox": [61, 1, 5, 5], "category_id": 3, "image_id": 12}])");
  expect_data_error([&] { load_coco(p, fx.opts()); },
                    {"train.json: annotations[1]", "wholly outside", "id 12"});
  // A box that begins on the image's right or bottom edge (the 60x40 image's pixels end there),
  // or ends on its left or top edge, lies wholly outside it too.
  for (const char* bbox : {"[60, 1, 5, 5]", "[1, 40, 5, 5]", "[-5, 1, 5, 5]", "[1, -5, 5, 5]"}) {
    SCOPED_TRACE(bbox);
    const std::string q = fx.write(std::string(R"([{"bbox": )") + bbox + R"(, "category_id": 3, "image_id": 12}])");
    expect_data_error([&] { load_coco(q, fx.opts()); }, {"train.json: annotations[0]", "wholly outside", "id 12"});
  }
}

// No annotation at all: pictures without objects (as `synth --empty 1` writes them; they were
// refused, so that eval could not read back the set it had written).
TEST(Coco, EmptyAnnotationsArePicturesWithoutObjects) {
  CocoFixture fx;
  const std::string p = fx.write("[]");
  const Dataset ds = load_coco(p, fx.opts());
  ASSERT_EQ(ds.images.size(), 2u);
  for (const auto& im : ds.images) EXPECT_TRUE(im.boxes.empty());
  EXPECT_EQ(ds.num_boxes(true), 0u);
}

TEST(Coco, WriteThenLoadRoundTrip) {
  CocoFixture fx;
  Dataset ds;
  ds.labels = {"x", "y", "z"};
  ImageRecord r;
  r.path = fx.dir.str("img/a.png");
  r.width = 60;
  r.height = 40;
  r.id = 4;
  r.boxes.push_back({1.5f, 2, 30, 39, 2, false});
  r.boxes.push_back({0, 0, 60, 40, 0, true});
  ds.images.push_back(r);
  write_coco(ds, fx.dir.str("out/rt.json"), fx.dir.str("img"));
  CocoOptions o;
  o.image_dir = fx.dir.str("img");
  const Dataset back = load_coco(fx.dir.str("out/rt.json"), o);
  EXPECT_EQ(back.labels, ds.labels);
  ASSERT_EQ(back.images.size(), 1u);
  EXPECT_EQ(fs::path(back.images[0].path), fs::path(r.path));
  ASSERT_EQ(back.images[0].boxes.size(), 2u);
  EXPECT_FLOAT_EQ(back.images[0].boxes[0].x1, 1.5f);
  EXPECT_FLOAT_EQ(back.images[0].boxes[0].y2, 39);
  EXPECT_EQ(back.images[0].boxes[0].label, 2);
  EXPECT_TRUE(back.images[0].boxes[1].ignore);
}

// ------------------------------------------------------------------------------------- VOC

namespace {

std::string voc_xml(const std::string& file, int w, int h, const std::string& objects) {
  return "<annotation><folder>VOC2007</folder><filename>" + file +
         "</filename><size><width>" + std::to_string(w) + "</width><height>" +
         std::to_string(h) + "</height><depth>3</depth></size>" + objects + "</annotation>";
}

std::string voc_object(const std::string& name, int difficult, int x1, int y1, int x2, int y2) {
  return "<object><name>" + name + "</name><pose>Left</pose><truncated>0</truncated><difficult>" +
         std::to_string(difficult) + "</difficult><bndbox><xmin>" + std::to_string(x1) +
         "</xmin><ymin>" + std::to_string(y1) + "</ymin><xmax>" + std::to_string(x2) +
         "</xmax><ymax>" + std::to_string(y2) + "</ymax></bndbox></object>";
}

struct VocFixture {
  TempDir dir;
  fs::path root;
  VocFixture() : root(dir.path() / "VOC2007") {
    write_image(root / "JPEGImages" / "000012.jpg", 50, 40);
    write_image(root / "JPEGImages" / "000017.jpg", 30, 30);
    write_text(root / "Annotations" / "000012.xml",
               voc_xml("000012.jpg", 50, 40,
                       voc_object("dog", 0, 5, 6, 20, 30) + voc_object("person", 1, 1, 1, 50, 40)));
    write_text(root / "Annotations" / "000017.xml",
               voc_xml("000017.jpg", 30, 30, voc_object("person", 0, 2, 3, 35, 10)));
    write_text(root / "ImageSets" / "Main" / "train.txt", "000012\n000017\n");
  }
};

}  // namespace

TEST(Voc, LoadsValidFolder) {
  VocFixture fx;
  LoadReport rep;
  const Dataset ds = load_voc(fx.root.string(), {}, &rep);
  EXPECT_EQ(ds.labels, voc_class_names());
  ASSERT_EQ(ds.images.size(), 2u);
  EXPECT_EQ(ds.images[0].id, 12);
  EXPECT_EQ(ds.images[0].width, 50);
  EXPECT_EQ(fs::path(ds.images[0].path), fx.root / "JPEGImages" / "000012.jpg");
  ASSERT_EQ(ds.images[0].boxes.size(), 2u);
  const BoxAnnotation& d = ds.images[0].boxes[0];
  EXPECT_FLOAT_EQ(d.x1, 4);  // xmin 5 (1-based) -> 4
  EXPECT_FLOAT_EQ(d.y1, 5);
  EXPECT_FLOAT_EQ(d.x2, 20);
  EXPECT_FLOAT_EQ(d.y2, 30);
  EXPECT_EQ(ds.labels[d.label], "dog");
  EXPECT_FALSE(d.ignore);
  EXPECT_TRUE(ds.images[0].boxes[1].ignore);  // difficult
  EXPECT_EQ(ds.labels[ds.images[0].boxes[1].label], "person");
  EXPECT_FLOAT_EQ(ds.images[1].boxes[0].x2, 30);  // clipped from 35
  EXPECT_EQ(rep.skipped_annotations, 0);
}

// A coordinate beyond float's range is clipped to the image as any other.
TEST(Voc, HugeCoordinatesAreClippedToTheImage) {
  VocFixture fx;
  std::string xml = voc_xml("000017.jpg", 30, 30, voc_object("person", 0, 2, 3, 35, 10));
  xml.replace(xml.find("<xmax>35</xmax>"), 15, "<xmax>1e300</xmax>");
  write_text(fx.root / "Annotations" / "000017.xml", xml);
  const Dataset ds = load_voc(fx.root.string(), {});
  ASSERT_EQ(ds.images.size(), 2u);
  ASSERT_EQ(ds.images[1].boxes.size(), 1u);
  EXPECT_FLOAT_EQ(ds.images[1].boxes[0].x1, 1);
  EXPECT_FLOAT_EQ(ds.images[1].boxes[0].x2, 30);
}

// Image ids are the names' numbers (VOC's 000012: 12) when they all are distinct numbers, else
// every image's position: never two images with one id.
TEST(Voc, ImageIdsAreUnique) {
  VocFixture fx;
  auto ids = [&] {
    std::set<int64_t> seen;
    for (const ImageRecord& r : load_voc(fx.root.string()).images)
      EXPECT_TRUE(seen.insert(r.id).second) << "id " << r.id << " twice";
    return seen;
  };
  EXPECT_EQ(ids(), (std::set<int64_t>{12, 17}));
  for (const char* other : {"dog_1", "17"}) {   // a name that is no number; "17" beside "000017"
    write_image(fx.root / "JPEGImages" / (std::string(other) + ".jpg"), 30, 30);
    write_text(fx.root / "Annotations" / (std::string(other) + ".xml"),
               voc_xml(std::string(other) + ".jpg", 30, 30, voc_object("dog", 0, 2, 3, 20, 10)));
    write_text(fx.root / "ImageSets" / "Main" / "train.txt", std::string("000012\n000017\n") + other + "\n");
    EXPECT_EQ(ids(), (std::set<int64_t>{0, 1, 2})) << other;
    fs::remove(fx.root / "Annotations" / (std::string(other) + ".xml"));
  }
}

TEST(Voc, LabelsFoundWhenNotVoc) {
  VocFixture fx;
  write_text(fx.root / "Annotations" / "000017.xml",
             voc_xml("000017.jpg", 30, 30, voc_object("zebra", 0, 2, 3, 20, 10)));
  const Dataset ds = load_voc(fx.root.string());
  EXPECT_EQ(ds.labels, (std::vector<std::string>{"dog", "person", "zebra"}));
  VocOptions o;
  o.labels = {"dog", "person"};
  expect_data_error([&] { load_voc(fx.root.string(), o); },
                    {"000017.xml: object[0]", "'zebra' is not in the label list"});
  o.labels.clear();
  o.split = "";  // every xml in Annotations
  EXPECT_EQ(load_voc(fx.root.string(), o).images.size(), 2u);
}

// use_labels re-indexes boxes to another class list by name, keeps COCO category ids with their
// names (a class the data set lacks gets a fresh id), drops classes without boxes, and refuses
// a class with boxes the list lacks.
TEST(Dataset, UseLabelsReindexesByName) {
  Dataset ds;
  ds.labels = {"person", "dog", "cat"};
  ds.category_ids = {5, 7, 9};
  ds.images.resize(1);
  ds.images[0].boxes.resize(2);
  ds.images[0].boxes[0].label = 0;
  ds.images[0].boxes[1].label = 1;
  Dataset same = ds;
  use_labels(same, ds.labels, "x");
  EXPECT_EQ(same.category_ids, ds.category_ids);
  use_labels(ds, {"dog", "bird", "person"}, "x");   // "cat" has no boxes
  EXPECT_EQ(ds.labels, (std::vector<std::string>{"dog", "bird", "person"}));
  EXPECT_EQ(ds.images[0].boxes[0].label, 2);
  EXPECT_EQ(ds.images[0].boxes[1].label, 0);
  EXPECT_EQ(ds.category_ids, (std::vector<int64_t>{7, 10, 5}));
  expect_data_error([&] { use_labels(ds, {"dog", "bird"}, "train.json"); },
                    {"train.json", "class 'person' (1 boxes) is not among the classes dog, bird"});
  // Any category id is kept with its name, negative ones too (COCO allows them).
  Dataset negative = same;
  negative.category_ids = {-1, 7, 9};
  use_labels(negative, {"dog", "person", "bird"}, "x");
  EXPECT_EQ(negative.category_ids, (std::vector<int64_t>{7, -1, 10}));
  // Several classes the data set lacks: each its own fresh id, none another category's.
  Dataset several = same;
  use_labels(several, {"horse", "dog", "bird", "person", "cow"}, "x");
  EXPECT_EQ(several.category_ids, (std::vector<int64_t>{10, 7, 11, 5, 12}));

  // A VOC folder (classes: the names it uses, sorted) in a model's order.
  VocFixture fx;
  const std::vector<std::string> model{"person", "car", "dog"};
  VocOptions o;
  o.labels = {"dog", "person"};   // as a VOC folder with no label list names its classes
  Dataset voc = load_voc(fx.root.string(), o);
  use_labels(voc, model, fx.root.string());
  EXPECT_EQ(voc.labels, model);
  ASSERT_EQ(voc.images[0].boxes.size(), 2u);
  EXPECT_EQ(voc.images[0].boxes[0].label, 2);   // dog
  EXPECT_EQ(voc.images[0].boxes[1].label, 0);   // person
}

TEST(Voc, MalformedXml) {
  VocFixture fx;
  write_text(fx.root / "Annotations" / "000017.xml", "<annotation><filename>000017.jpg</filename><size>");
  expect_data_error([&] { load_voc(fx.root.string()); }, {"000017.xml", "malformed XML"});
  write_text(fx.root / "Annotations" / "000017.xml",
             voc_xml("000017.jpg", 30, 30,
                     "<object><name>dog</name><bndbox><xmin>1</xmin><ymin>x</ymin><xmax>5</xmax>"
                     "<ymax>5</ymax></bndbox></object>"));
  expect_data_error([&] { load_voc(fx.root.string()); },
                    {"000017.xml: object[0].bndbox", "<ymin> is not a number"});
}

// What Windows editors and copied annotations leave: a split file with a UTF-8 BOM (read), one in
// UTF-16 (refused, saying so: the error printed raw bytes), an id listed twice (its image counted
// twice), two XMLs naming one image (the other's boxes scored and trained on it), class names
// that differ only in case or are not VOC's among VOC's (warned: classes of their own, and
// VOC's order lost).
TEST(Voc, SplitAndAnnotationMistakes) {
  VocFixture fx;
  const fs::path split = fx.root / "ImageSets" / "Main" / "train.txt";
  write_text(split, "\xEF\xBB\xBF" "000012\r\n000017\r\n");
  EXPECT_EQ(load_voc(fx.root.string()).images.size(), 2u);
  write_text(split, std::string("\xFF\xFE" "0\0" "0\0", 6));
  expect_data_error([&] { load_voc(fx.root.string()); }, {"train.txt", "not a UTF-8 text file"});
  write_text(split, "000012\n000017\n\n000012 1\n");
  expect_data_error([&] { load_voc(fx.root.string()); },
                    {"train.txt: line 4: id '000012' is listed again (first on line 1)"});
  write_text(split, "000012\n000017\n");
  write_text(fx.root / "Annotations" / "000017.xml",
             voc_xml("000012.jpg", 50, 40, voc_object("person", 0, 2, 3, 35, 10)));
  expect_data_error([&] { load_voc(fx.root.string()); },
                    {"000017.xml: filename: names the image", "000012.jpg, as", "000012.xml does"});
  write_text(fx.root / "Annotations" / "000017.xml",
             voc_xml("000017.jpg", 30, 30, voc_object("Dog", 0, 2, 3, 20, 10) + voc_object("dgo", 0, 2, 3, 20, 10)));
  LoadReport rep;
  const Dataset ds = load_voc(fx.root.string(), {}, &rep);
  EXPECT_EQ(ds.labels, (std::vector<std::string>{"Dog", "dgo", "dog", "person"}));
  ASSERT_EQ(rep.warnings.size(), 2u);
  EXPECT_NE(rep.warnings[0].find("the class names Dog, dog differ only in case"), std::string::npos) << rep.warnings[0];
  EXPECT_NE(rep.warnings[1].find("Dog (dog?), dgo (dog?): not Pascal VOC class names"), std::string::npos)
      << rep.warnings[1];
  // An image named outside JPEGImages: warned about (Coco.NamesOutsideTheImageFolderAreWarnedAbout).
  write_image(fx.dir.path() / "outside.jpg", 30, 30);
  write_text(fx.root / "Annotations" / "000017.xml", voc_xml("../../outside.jpg", 30, 30, voc_object("person", 0, 2, 3, 20, 10)));
  LoadReport out;
  load_voc(fx.root.string(), {}, &out);
  ASSERT_EQ(out.warnings.size(), 1u);
  EXPECT_NE(out.warnings[0].find("1 image file name(s) lead outside " + (fx.root / "JPEGImages").string() +
                                 " (the first: " + (fx.root / "Annotations" / "000017.xml").string() + " '../../outside.jpg')"),
            std::string::npos) << out.warnings[0];
  // Case beyond ASCII: Ölkanne and ölkanne differ only in case too (lower_ascii said nothing).
  write_text(fx.root / "Annotations" / "000017.xml",
             voc_xml("000017.jpg", 30, 30, voc_object("\u00d6lkanne", 0, 2, 3, 20, 10) +
                                               voc_object("\u00f6lkanne", 0, 2, 3, 20, 10)));
  LoadReport folded;
  load_voc(fx.root.string(), {}, &folded);
  ASSERT_EQ(folded.warnings.size(), 1u);
  EXPECT_NE(folded.warnings[0].find("the class names \u00d6lkanne, \u00f6lkanne differ only in case"), std::string::npos)
      << folded.warnings[0];
  // Names of a set of its own beside a VOC one (person, helmet, vest): nothing said.
  write_text(fx.root / "Annotations" / "000017.xml",
             voc_xml("000017.jpg", 30, 30, voc_object("helmet", 0, 2, 3, 20, 10) + voc_object("vest", 0, 2, 3, 20, 10)));
  LoadReport own;
  load_voc(fx.root.string(), {}, &own);
  EXPECT_TRUE(own.warnings.empty()) << own.warnings.front();
}

TEST(Voc, MissingFilesAndOutsideBoxes) {
  VocFixture fx;
  VocOptions o;
  o.split = "val";
  expect_data_error([&] { load_voc(fx.root.string(), o); }, {"val.txt", "cannot open"});
  fs::remove(fx.root / "JPEGImages" / "000017.jpg");
  expect_data_error([&] { load_voc(fx.root.string()); }, {"000017.xml", "image file not found"});
  write_image(fx.root / "JPEGImages" / "000017.jpg", 30, 30);
  write_text(fx.root / "Annotations" / "000017.xml",
             voc_xml("000017.jpg", 30, 30, voc_object("dog", 0, 40, 3, 45, 10)));
  expect_data_error([&] { load_voc(fx.root.string()); }, {"000017.xml: object[0]", "wholly outside"});
}

// ----------------------------------------------------------------------------------- Synth

TEST(Synth, SameSeedSameBytesDifferentSeedDifferent) {
  const SynthSample a = render_synth_image(128, 96, 42);
  const SynthSample b = render_synth_image(128, 96, 42);
  const SynthSample c = render_synth_image(128, 96, 43);
  ASSERT_EQ(a.image.size(), cv::Size(128, 96));
  EXPECT_EQ(cv::norm(a.image, b.image, cv::NORM_INF), 0.0);
  ASSERT_EQ(a.boxes.size(), b.boxes.size());
  for (size_t i = 0; i < a.boxes.size(); ++i) {
    EXPECT_EQ(a.boxes[i].x1, b.boxes[i].x1);
    EXPECT_EQ(a.boxes[i].y2, b.boxes[i].y2);
    EXPECT_EQ(a.boxes[i].label, b.boxes[i].label);
  }
  EXPECT_GT(cv::norm(a.image, c.image, cv::NORM_L1), 0.0);

  TempDir d1, d2, d3;
  SynthDatasetOptions o;
  o.count = 3;
  o.width = 64;
  o.height = 64;
  o.seed = 7;
  write_synth_dataset(d1.str("s"), o);
  write_synth_dataset(d2.str("s"), o);
  o.seed = 8;
  write_synth_dataset(d3.str("s"), o);
  for (const char* f : {"images/000000.jpg", "images/000002.jpg", "annotations.json"}) {
    const std::string x = read_bytes(d1.path() / "s" / f), y = read_bytes(d2.path() / "s" / f);
    EXPECT_FALSE(x.empty());
    EXPECT_EQ(x, y) << f;
    EXPECT_NE(x, read_bytes(d3.path() / "s" / f)) << f;
  }
}

// A set interrupted while its images are written (the process killed) is written again into
// its folder afterwards, not refused as a folder of someone else's images.
TEST(Synth, AnInterruptedSetIsWrittenAgain) {
  TempDir d;
  const std::string dir = d.str("s");
  SynthDatasetOptions big;
  big.count = 100000;
  big.width = big.height = 64;
  big.format = "png";
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    try {
      write_synth_dataset(dir, big);
    } catch (...) {
    }
    _exit(0);
  }
  const fs::path second = d.path() / "s" / "images" / "000001.png";
  const auto progress = ssdtest::wait_for_child(child, [&] { return fs::exists(second); });
  if (!progress.ended) {
    kill(child, SIGKILL);
    waitpid(child, nullptr, 0);
  }
  ASSERT_FALSE(progress.ended) << "the child ended by itself (could it write " << dir << "?)";
  ASSERT_TRUE(progress.reached) << "the child wrote nothing in 30 s";
  ASSERT_FALSE(fs::exists(d.path() / "s" / "images" / "099999.png")) << "not interrupted";
  // (What a kill while an image was being written leaves, whether or not this one did.)
  std::ofstream(d.path() / "s" / "images" / "000007.png.tmp") << "half an image";
  SynthDatasetOptions o;
  o.count = 2;
  o.width = o.height = 64;
  o.format = "png";
  EXPECT_EQ(write_synth_dataset(dir, o).images.size(), 2u);
  size_t left = 0;
  for (const auto& e : fs::directory_iterator(d.path() / "s" / "images")) left += e.is_regular_file();
  EXPECT_EQ(left, 2u);
}

// A disk that fills while the images are written (here: a file size limit, EFBIG as ENOSPC would
// be) is an error naming the image and the reason (OpenCV's imwrite said only false), leaving no
// half-written image behind.
TEST(Synth, AFullDiskIsNamedWithItsReason) {
  TempDir d;
  SynthDatasetOptions o;
  o.count = 3;
  o.width = o.height = 224;
  o.format = "png";   // (a textured 224 px PNG takes tens of kB, annotations.json of no images one)
  struct rlimit old_limit;
  ASSERT_EQ(getrlimit(RLIMIT_FSIZE, &old_limit), 0);
  const auto old_handler = signal(SIGXFSZ, SIG_IGN);   // (as ssd-train does: write fails with EFBIG)
  struct rlimit small = old_limit;
  small.rlim_cur = 4096;
  ASSERT_EQ(setrlimit(RLIMIT_FSIZE, &small), 0);
  std::string message;
  try {
    write_synth_dataset(d.str("s"), o);
  } catch (const ssd::Error& e) {
    message = e.what();
  }
  setrlimit(RLIMIT_FSIZE, &old_limit);
  signal(SIGXFSZ, old_handler);
  EXPECT_EQ(message, "cannot write " + (d.path() / "s" / "images" / "000000.png").string() + ": " +
                         std::strerror(EFBIG));
  EXPECT_FALSE(fs::exists(d.path() / "s" / "images" / "000000.png.tmp"));
}

TEST(Synth, DatasetLoadsBackAsCoco) {
  TempDir d;
  SynthDatasetOptions o;
  o.count = 5;
  o.width = 80;
  o.height = 60;
  o.format = "png";
  const Dataset written = write_synth_dataset(d.str("s"), o);
  const Dataset ds = load_coco(d.str("s/annotations.json"), {d.str("s/images")});
  EXPECT_EQ(ds.labels, synth_class_names());
  ASSERT_EQ(ds.images.size(), 5u);
  for (size_t i = 0; i < 5; ++i) {
    ASSERT_EQ(ds.images[i].boxes.size(), written.images[i].boxes.size());
    EXPECT_GE(ds.images[i].boxes.size(), 1u);
    EXPECT_LE(ds.images[i].boxes.size(), 4u);
    const cv::Mat img = cv::imread(ds.images[i].path);
    EXPECT_EQ(img.size(), cv::Size(80, 60));
    for (size_t k = 0; k < ds.images[i].boxes.size(); ++k)
      EXPECT_FLOAT_EQ(ds.images[i].boxes[k].x1, written.images[i].boxes[k].x1);
  }
}

TEST(Synth, BoxesAreTightAroundShapes) {
  SynthOptions o;
  o.textured_background = false;
  o.noise = 0;
  std::set<int> labels_seen;
  for (uint64_t seed = 0; seed < 30; ++seed) {
    const SynthSample s = render_synth_image(160, 120, seed, o);
    const cv::Vec3b bg = s.image.at<cv::Vec3b>(0, 0);  // shapes keep a 1 px margin
    cv::Mat fg;
    cv::Mat diff;
    cv::absdiff(s.image, cv::Scalar(bg), diff);
    cv::cvtColor(diff, fg, cv::COLOR_BGR2GRAY);
    fg = fg > 0;
    ASSERT_GE(s.boxes.size(), 1u);
    ASSERT_LE(s.boxes.size(), 4u);
    cv::Mat covered = cv::Mat::zeros(fg.size(), CV_8U);
    for (size_t k = 0; k < s.boxes.size(); ++k) {
      const BoxAnnotation& b = s.boxes[k];
      labels_seen.insert(b.label);
      const int x1 = static_cast<int>(b.x1), y1 = static_cast<int>(b.y1);
      const int x2 = static_cast<int>(b.x2), y2 = static_cast<int>(b.y2);
      ASSERT_TRUE(x1 >= 0 && y1 >= 0 && x2 <= 160 && y2 <= 120 && x2 > x1 && y2 > y1);
      // Not tiny: longer side at least ~min_size of the short image side (occlusion aside).
      EXPECT_GE(std::max(x2 - x1, y2 - y1), 6) << "seed " << seed;
      // Each border row/column of the box holds a shape pixel, and that object's own pixel.
      const cv::Mat own = s.owner == static_cast<int>(k + 1);
      for (const cv::Rect& edge : {cv::Rect(x1, y1, x2 - x1, 1), cv::Rect(x1, y2 - 1, x2 - x1, 1),
                                   cv::Rect(x1, y1, 1, y2 - y1), cv::Rect(x2 - 1, y1, 1, y2 - y1)}) {
        EXPECT_GT(cv::countNonZero(fg(edge)), 0) << "seed " << seed << " box " << k;
        EXPECT_GT(cv::countNonZero(own(edge)), 0) << "seed " << seed << " box " << k;
      }
      // The object's pixels all differ from the background and lie inside its box.
      EXPECT_EQ(cv::countNonZero(own & ~fg), 0);
      EXPECT_EQ(cv::countNonZero(own), cv::countNonZero(own(cv::Rect(x1, y1, x2 - x1, y2 - y1))));
      covered(cv::Rect(x1, y1, x2 - x1, y2 - y1)).setTo(255);
    }
    // No shape pixel outside every box.
    EXPECT_EQ(cv::countNonZero(fg & ~covered), 0) << "seed " << seed;
  }
  EXPECT_EQ(labels_seen.size(), synth_class_names().size());
}

TEST(Synth, TexturedImagesAndBadOptions) {
  const SynthSample s = render_synth_image(224, 224, 5);
  cv::Mat grey;
  cv::cvtColor(s.image, grey, cv::COLOR_BGR2GRAY);
  cv::Scalar mean, sd;
  cv::meanStdDev(grey, mean, sd, s.owner == 0);
  EXPECT_GT(sd[0], 3.0);  // the background is not flat
  // Varied scales within the documented bounds.
  float smallest = 1e9f, largest = 0;
  size_t count = 0;
  for (uint64_t seed = 0; seed < 40; ++seed) {
    for (const auto& b : render_synth_image(224, 224, seed).boxes) {
      const float side = std::max(b.x2 - b.x1, b.y2 - b.y1);
      EXPECT_LE(side, 0.6f * 1.415f * 224 + 2);
      smallest = std::min(smallest, side);
      largest = std::max(largest, side);
      ++count;
    }
  }
  EXPECT_GT(count, 60u);  // 1-4 objects per image, 2.5 on average
  EXPECT_LT(smallest, 0.2f * 224);
  EXPECT_GT(largest, 0.5f * 224);
  expect_data_error([] { render_synth_image(8, 8, 1); }, {"synth", "size"});
  SynthOptions bad;
  bad.max_objects = 0;
  expect_data_error([&] { render_synth_image(64, 64, 1, bad); }, {"objects"});
}

namespace {
// Sum of an image's bytes, and the sum weighted by position mod 251: a golden fingerprint.
std::pair<uint64_t, uint64_t> fingerprint(const cv::Mat& img) {
  uint64_t sum = 0, weighted = 0, i = 0;
  for (int y = 0; y < img.rows; ++y)
    for (const uchar* p = img.ptr<uchar>(y), *end = p + img.cols * img.channels(); p != end; ++p, ++i) {
      sum += *p;
      weighted += *p * (i % 251);
    }
  return {sum, weighted};
}
}  // namespace

TEST(Synth, SetsMadeWithoutNegativesKeepTheirPixels) {
  // Golden values of images rendered before SynthOptions::empty_fraction existed (the shipped
  // model's training runs name their sets by seed): the option left at 0 draws nothing more.
  EXPECT_EQ(fingerprint(render_synth_image(96, 80, 42).image), std::make_pair(uint64_t{3167837}, uint64_t{395037578}));
  EXPECT_EQ(fingerprint(render_synth_image(224, 224, 7).image), std::make_pair(uint64_t{16302237}, uint64_t{2037653409}));
}

TEST(Synth, NegativesHaveNoObjectOnFlatGradientOrTexturedBackgrounds) {
  SynthOptions o;
  o.empty_fraction = 0.3;
  int empty = 0, flat = 0, grey = 0, with_objects = 0, with_objects_flat = 0;
  const int n = 400;
  for (uint64_t seed = 0; seed < n; ++seed) {
    const SynthSample s = render_synth_image(64, 48, seed, o);
    if (!s.boxes.empty()) {
      EXPECT_GT(cv::countNonZero(s.owner), 0);
      // A flat background: each channel of the pixels no object covers within the noise.
      cv::Mat ch[3];
      cv::split(s.image, ch);
      bool flat_background = true;
      for (int c = 0; c < 3; ++c) {
        double clo, chi;
        cv::minMaxLoc(ch[c], &clo, &chi, nullptr, nullptr, s.owner == 0);
        flat_background = flat_background && chi - clo <= 2 * 12;
      }
      with_objects_flat += flat_background;
      ++with_objects;
      continue;
    }
    ++empty;
    EXPECT_EQ(cv::countNonZero(s.owner), 0) << "seed " << seed;
    // Flat: each channel within the noise amplitude (12) of its mean; grey: the means equal.
    cv::Scalar mean, sd;
    cv::meanStdDev(s.image, mean, sd);
    cv::Mat ch[3];
    cv::split(s.image, ch);
    bool is_flat = true;
    for (int c = 0; c < 3; ++c) {
      double clo, chi;
      cv::minMaxLoc(ch[c], &clo, &chi);
      is_flat = is_flat && chi - clo <= 2 * 12;
    }
    if (is_flat && sd[0] < 8 && sd[1] < 8 && sd[2] < 8) {
      ++flat;
      if (std::abs(mean[0] - mean[1]) < 3 && std::abs(mean[1] - mean[2]) < 3) ++grey;
    }
  }
  // Binomial(400, 0.3): mean 120, sd 9.2; a third of them flat, a third of those grey.
  EXPECT_GT(empty, 85);
  EXPECT_LT(empty, 155);
  EXPECT_GT(flat, empty / 6);
  EXPECT_LT(flat, empty / 2 + 15);
  EXPECT_GT(grey, 0);
  EXPECT_LT(grey, flat);
  EXPECT_GT(empty - flat, empty / 3);   // gradients and textured ones
  // A third of the images with objects on a flat background too (so that it is no cue for
  // "nothing here"): 280 +- 14 images, 93 expected.
  EXPECT_GT(with_objects_flat, with_objects / 5);
  EXPECT_LT(with_objects_flat, with_objects / 2);
  SynthOptions all;
  all.empty_fraction = 1;
  for (uint64_t seed = 0; seed < 20; ++seed) EXPECT_TRUE(render_synth_image(64, 64, seed, all).boxes.empty());
  for (double bad : {-0.1, 1.5, std::nan("")}) {
    SynthOptions b;
    b.empty_fraction = bad;
    expect_data_error([&] { render_synth_image(64, 64, 1, b); }, {"empty_fraction"});
  }
}

// --------------------------------------------------------------------------------- Augment

namespace {

// A black image with one bright rectangle and its box.
Sample bright_rect(int w, int h, cv::Rect r) {
  Sample s;
  s.image = cv::Mat::zeros(h, w, CV_8UC3);
  s.image(r).setTo(cv::Scalar(255, 255, 255));
  BoxAnnotation b;
  b.x1 = static_cast<float>(r.x);
  b.y1 = static_cast<float>(r.y);
  b.x2 = static_cast<float>(r.x + r.width);
  b.y2 = static_cast<float>(r.y + r.height);
  b.label = 3;
  s.boxes.push_back(b);
  return s;
}

cv::Rect bright_pixels(const cv::Mat& rgb, int threshold = 128) {
  cv::Mat g;
  cv::cvtColor(rgb, g, cv::COLOR_RGB2GRAY);
  return cv::boundingRect(g > threshold);
}

void expect_box_near(const BoxAnnotation& b, const cv::Rect& r, float tol, const std::string& what) {
  EXPECT_NEAR(b.x1, r.x, tol) << what;
  EXPECT_NEAR(b.y1, r.y, tol) << what;
  EXPECT_NEAR(b.x2, r.x + r.width, tol) << what;
  EXPECT_NEAR(b.y2, r.y + r.height, tol) << what;
}

}  // namespace

TEST(Augment, FlipMovesBoxWithPixels) {
  Sample s = bright_rect(100, 80, cv::Rect(20, 10, 30, 30));
  hflip(s);
  ASSERT_EQ(s.boxes.size(), 1u);
  expect_box_near(s.boxes[0], bright_pixels(s.image), 0.0f, "flip");
  EXPECT_FLOAT_EQ(s.boxes[0].x1, 50);
  EXPECT_FLOAT_EQ(s.boxes[0].x2, 80);
}

TEST(Augment, RotationMovesBoxWithPixels) {
  for (double deg : {-10.0, -4.0, 3.0, 10.0, 25.0}) {
    Sample s = bright_rect(120, 90, cv::Rect(30, 20, 40, 25));
    rotate(s, deg, cv::Scalar(0, 0, 0));
    ASSERT_EQ(s.boxes.size(), 1u);
    expect_box_near(s.boxes[0], bright_pixels(s.image), 1.5f, "rotate " + std::to_string(deg));
  }
  // A box rotated towards a corner is clipped to the image.
  Sample s = bright_rect(100, 100, cv::Rect(0, 0, 40, 40));
  rotate(s, 10.0, cv::Scalar(0, 0, 0));
  ASSERT_EQ(s.boxes.size(), 1u);
  EXPECT_GE(s.boxes[0].x1, 0);
  EXPECT_GE(s.boxes[0].y1, 0);
  expect_box_near(s.boxes[0], bright_pixels(s.image), 1.5f, "rotate corner");
  // A thin box along the left edge whose centre the rotation takes out of the image: a target is
  // dropped, a region marked ignore keeps the part still in the image, as in a crop.
  for (const bool ignore : {false, true}) {
    Sample t = bright_rect(100, 100, cv::Rect(0, 0, 6, 30));
    t.boxes[0].ignore = ignore;
    rotate(t, 10.0, cv::Scalar(0, 0, 0));
    ASSERT_EQ(t.boxes.size(), ignore ? 1u : 0u) << (ignore ? "ignored region" : "target");
    if (!ignore) continue;
    EXPECT_TRUE(t.boxes[0].ignore);
    EXPECT_EQ(t.boxes[0].x1, 0);
    // (The box of the rotated corners, clipped: it holds every pixel of the region still seen.)
    const cv::Rect seen = bright_pixels(t.image);
    ASSERT_GT(seen.area(), 0);
    EXPECT_LE(t.boxes[0].y1, seen.y + 1.5f);
    EXPECT_GE(t.boxes[0].x2, seen.x + seen.width - 1.5f);
    EXPECT_GE(t.boxes[0].y2, seen.y + seen.height - 1.5f);
  }
}

TEST(Augment, ZoomCropResizeMoveBoxes) {
  Sample s = bright_rect(100, 80, cv::Rect(20, 10, 30, 30));
  zoom_out(s, 150, 100, 40, 15, cv::Scalar(0, 0, 0));
  expect_box_near(s.boxes[0], bright_pixels(s.image), 0.0f, "zoom_out");
  crop(s, cv::Rect(70, 20, 60, 70));  // cuts the rectangle; its centre (75, 40) stays inside
  ASSERT_EQ(s.boxes.size(), 1u);
  expect_box_near(s.boxes[0], bright_pixels(s.image), 0.0f, "crop");
  squish_resize(s, 32);
  EXPECT_EQ(s.image.size(), cv::Size(32, 32));
  expect_box_near(s.boxes[0], bright_pixels(s.image, 100), 1.0f, "resize");
  Sample t = bright_rect(100, 80, cv::Rect(20, 10, 30, 30));
  crop(t, cv::Rect(40, 0, 60, 80));  // centre (35, 25) outside: dropped
  EXPECT_TRUE(t.boxes.empty());
  // The crop is half-open, as its pixels are: a centre on its left or top edge is inside, on its
  // right or bottom edge outside (the rectangle spans x 20-50, y 10-40: centre (35, 25)).
  for (const auto& [roi, inside] : {std::pair{cv::Rect(35, 0, 60, 80), true}, std::pair{cv::Rect(0, 25, 100, 55), true},
                                    std::pair{cv::Rect(0, 0, 35, 80), false}, std::pair{cv::Rect(0, 0, 100, 25), false}}) {
    Sample e = bright_rect(100, 80, cv::Rect(20, 10, 30, 30));
    crop(e, roi);
    EXPECT_EQ(e.boxes.size(), inside ? 1u : 0u) << roi;
  }
  // A region marked ignore keeps what the crop holds of it, wherever its centre is: the anchors
  // on that part stay out of the class loss.
  Sample u = bright_rect(100, 80, cv::Rect(20, 10, 30, 30));
  u.boxes[0].ignore = true;
  crop(u, cv::Rect(40, 0, 60, 80));
  ASSERT_EQ(u.boxes.size(), 1u);
  EXPECT_TRUE(u.boxes[0].ignore);
  expect_box_near(u.boxes[0], bright_pixels(u.image), 0.0f, "crop of an ignored region");
  crop(u, cv::Rect(20, 0, 40, 80));   // no part of it left: dropped
  EXPECT_TRUE(u.boxes.empty());
}

TEST(Augment, RandomPipelineKeepsBoxesOnPixels) {
  AugmentOptions o;
  o.rotate_prob = 0.7;
  o.zoom_out_prob = 0.5;
  o.crop_prob = 0.7;
  const std::array<float, 3> black = {0, 0, 0};
  int flipped = 0;
  for (uint64_t seed = 0; seed < 60; ++seed) {
    Sample s = bright_rect(160, 120, cv::Rect(50, 30, 50, 40));
    Rng rng(seed);
    augment(s, 64, o, rng, black);
    ASSERT_EQ(s.image.size(), cv::Size(64, 64));
    ASSERT_EQ(s.boxes.size(), 1u) << "seed " << seed;
    EXPECT_EQ(s.boxes[0].label, 3);
    expect_box_near(s.boxes[0], bright_pixels(s.image, 100), 2.0f, "seed " + std::to_string(seed));
    if (s.boxes[0].x1 > 64 - s.boxes[0].x2 + 4) ++flipped;
    // Same seed, same result.
    Sample s2 = bright_rect(160, 120, cv::Rect(50, 30, 50, 40));
    Rng rng2(seed);
    augment(s2, 64, o, rng2, black);
    EXPECT_EQ(cv::norm(s.image, s2.image, cv::NORM_INF), 0.0);
  }
  EXPECT_GT(flipped, 5);  // flips do happen (the rectangle starts left of centre)
}

// Lighting: p' = ((p / 255 - 0.5) * contrast + 0.5 + brightness) * 255, saturated: the contrast
// scales about mid-grey, the brightness shifts by a fraction of full scale.
TEST(Augment, LightingScalesAboutMidGreyAndShiftsByTheBrightness) {
  const int v[6] = {0, 40, 100, 128, 200, 255};
  cv::Mat m(1, 6, CV_8UC3);
  for (int i = 0; i < 6; ++i) m.at<cv::Vec3b>(0, i) = cv::Vec3b(v[i], v[i], v[i]);
  for (const auto& [contrast, brightness] : {std::pair{1.5, 0.1}, std::pair{0.7, -0.05}, std::pair{1.3, 0.0},
                                             std::pair{1.0, 0.2}}) {
    Sample s;
    s.image = m.clone();
    adjust_lighting(s, contrast, brightness);
    for (int i = 0; i < 6; ++i) {
      const double expect = std::clamp(((v[i] / 255.0 - 0.5) * contrast + 0.5 + brightness) * 255.0, 0.0, 255.0);
      for (int k = 0; k < 3; ++k)
        EXPECT_NEAR(s.image.at<cv::Vec3b>(0, i)[k], expect, 0.51)
            << "pixel " << v[i] << ", contrast " << contrast << ", brightness " << brightness;
    }
  }
}

// augment()'s options with every random step off: a test switches on the one it looks at.
AugmentOptions no_augmentation() {
  AugmentOptions o;
  o.flip = false;
  o.rotate_prob = 0;
  o.lighting_prob = 0;
  o.zoom_out_prob = 0;
  o.crop_prob = 0;
  return o;
}

// augment() draws the contrast from [1 - contrast, 1 + contrast] and the brightness from
// [-brightness, brightness]: pictures get both flatter and stronger, darker and brighter.
TEST(Augment, ContrastAndBrightnessAreDrawnOnBothSides) {
  AugmentOptions o = no_augmentation();
  o.lighting_prob = 1;
  const std::array<float, 3> black = {0, 0, 0};
  // Two halves, 64 and 192: their difference gives the contrast, their mean the brightness.
  auto contrast_and_brightness = [&](const AugmentOptions& oo, uint64_t seed) {
    Sample s;
    s.image = cv::Mat(32, 32, CV_8UC3, cv::Scalar(64, 64, 64));
    s.image(cv::Rect(16, 0, 16, 32)).setTo(cv::Scalar(192, 192, 192));
    Rng rng(seed);
    augment(s, 32, oo, rng, black);
    const double lo = s.image.at<cv::Vec3b>(5, 3)[0], hi = s.image.at<cv::Vec3b>(5, 28)[0];
    return std::pair{(hi - lo) / 128.0, ((hi + lo) / 2 - 128.0) / 255.0};
  };
  o.contrast = 0.4;
  o.brightness = 0;
  double cmin = 9, cmax = 0;
  for (uint64_t seed = 0; seed < 100; ++seed) {
    const double c = contrast_and_brightness(o, seed).first;
    cmin = std::min(cmin, c);
    cmax = std::max(cmax, c);
  }
  EXPECT_GT(cmin, 0.6 - 0.02);
  EXPECT_LT(cmin, 0.7);
  EXPECT_GT(cmax, 1.3);
  EXPECT_LT(cmax, 1.4 + 0.02);
  o.contrast = 0;
  o.brightness = 0.2;
  double bmin = 9, bmax = -9;
  for (uint64_t seed = 0; seed < 100; ++seed) {
    const auto [c, b] = contrast_and_brightness(o, seed);
    EXPECT_NEAR(c, 1.0, 0.02);
    bmin = std::min(bmin, b);
    bmax = std::max(bmax, b);
  }
  EXPECT_GT(bmin, -0.2 - 0.01);
  EXPECT_LT(bmin, -0.15);
  EXPECT_GT(bmax, 0.15);
  EXPECT_LT(bmax, 0.2 + 0.01);
}

// Rotations by a multiple of a right angle about the image's centre move pixels onto pixels: a
// half turn is the picture mirrored both ways, and the boxes follow exactly.
TEST(Augment, HalfAndQuarterTurnsMoveBoxesExactlyWithThePixels) {
  Sample s = bright_rect(100, 80, cv::Rect(20, 10, 30, 25));
  cv::Mat mirrored;
  cv::flip(s.image, mirrored, -1);
  rotate(s, 180.0, cv::Scalar(0, 0, 0));
  EXPECT_EQ(cv::norm(s.image, mirrored, cv::NORM_INF), 0.0);
  ASSERT_EQ(s.boxes.size(), 1u);
  EXPECT_NEAR(s.boxes[0].x1, 50, 1e-3);
  EXPECT_NEAR(s.boxes[0].y1, 45, 1e-3);
  EXPECT_NEAR(s.boxes[0].x2, 80, 1e-3);
  EXPECT_NEAR(s.boxes[0].y2, 70, 1e-3);
  for (double deg : {90.0, -90.0}) {
    Sample q = bright_rect(90, 90, cv::Rect(20, 10, 30, 25));
    rotate(q, deg, cv::Scalar(0, 0, 0));
    ASSERT_EQ(q.boxes.size(), 1u);
    expect_box_near(q.boxes[0], bright_pixels(q.image), 1e-3f, "rotate " + std::to_string(deg));
    EXPECT_EQ(bright_pixels(q.image).area(), 30 * 25);
  }
}

// Zooming out places the picture on a canvas of the same shape (both sides times one factor):
// after the squish to a square, a box keeps the proportions it had in the picture's own.
TEST(Augment, ZoomOutKeepsThePicturesShape) {
  AugmentOptions o = no_augmentation();
  o.zoom_out_prob = 1;
  o.max_zoom_out = 3;
  const std::array<float, 3> black = {0, 0, 0};
  double smallest = 99;
  for (uint64_t seed = 0; seed < 30; ++seed) {
    Sample s = bright_rect(160, 80, cv::Rect(60, 20, 40, 40));   // squished: 16 x 32 at zoom 1
    Rng rng(seed);
    augment(s, 64, o, rng, black);
    ASSERT_EQ(s.boxes.size(), 1u);
    const double w = s.boxes[0].x2 - s.boxes[0].x1, h = s.boxes[0].y2 - s.boxes[0].y1;
    EXPECT_NEAR(h / w, 2.0, 0.03) << "seed " << seed;
    EXPECT_GT(w, 16.0 / 3 - 0.1);
    EXPECT_LT(w, 16.0 + 0.1);
    smallest = std::min(smallest, w);
  }
  EXPECT_LT(smallest, 8.0);   // zooms beyond 2 happen
}

// A rotation that would take every object out of the picture (here one 3x3 box in the top left
// corner, which half the angles of up to 10 degrees move out) is not made: each sample keeps its
// object, on its unrotated pixels; the others are rotated.
TEST(Augment, ARotationNeverTakesEveryObjectOut) {
  AugmentOptions o = no_augmentation();
  o.rotate_prob = 1;
  o.max_rotate_deg = 10;
  const std::array<float, 3> black = {0, 0, 0};
  int kept_unrotated = 0, rotated = 0;
  for (uint64_t seed = 0; seed < 40; ++seed) {
    Sample s = bright_rect(100, 100, cv::Rect(0, 0, 3, 3));
    const cv::Mat before = s.image.clone();
    Rng rng(seed);
    augment(s, 100, o, rng, black);
    ASSERT_EQ(s.boxes.size(), 1u) << "seed " << seed;
    if (cv::norm(s.image, before, cv::NORM_INF) == 0) {
      ++kept_unrotated;
      EXPECT_EQ(s.boxes[0].x2, 3.f);
      EXPECT_EQ(s.boxes[0].y2, 3.f);
    } else {
      ++rotated;
    }
  }
  EXPECT_GT(kept_unrotated, 5);
  EXPECT_GT(rotated, 5);
}

TEST(Augment, NormalisesToChw) {
  cv::Mat m(2, 3, CV_8UC3, cv::Scalar(255, 0, 51));
  m.at<cv::Vec3b>(1, 2) = cv::Vec3b(0, 255, 102);
  std::vector<float> out(3 * 2 * 3);
  to_chw_normalised(m, {0.5f, 0.25f, 0.1f}, {0.5f, 0.25f, 0.2f}, out.data());
  EXPECT_FLOAT_EQ(out[0], (1.0f - 0.5f) / 0.5f);        // R, (0,0)
  EXPECT_FLOAT_EQ(out[6], (0.0f - 0.25f) / 0.25f);      // G, (0,0)
  EXPECT_FLOAT_EQ(out[12], (0.2f - 0.1f) / 0.2f);       // B, (0,0)
  EXPECT_FLOAT_EQ(out[5], (0.0f - 0.5f) / 0.5f);        // R, (1,2)
  EXPECT_FLOAT_EQ(out[11], (1.0f - 0.25f) / 0.25f);     // G, (1,2)
  EXPECT_NEAR(out[17], (0.4f - 0.1f) / 0.2f, 1e-6);     // B, (1,2)
}

// ---------------------------------------------------------------------------------- Loader

namespace {

struct SynthSet {
  TempDir dir;
  Dataset ds;
  explicit SynthSet(int count, int side = 64) {
    SynthDatasetOptions o;
    o.count = count;
    o.width = side;
    o.height = side + 8;
    o.seed = 3;
    o.format = "png";
    ds = write_synth_dataset(dir.str("s"), o);
  }
};

}  // namespace

TEST(Loader, BatchShapesAndTargets) {
  SynthSet set(10);
  set.ds.images[2].boxes.push_back({1, 1, 30, 30, 0, true});  // ignored: not a target,
  set.ds.images[2].boxes.push_back({5, 7, 20, 40, 1, true});  // but an ignore region
  set.ds.images[5].boxes.push_back({2, 3, 9, 50, 0, true});
  LoaderOptions o;
  o.image_size = 48;
  o.batch_size = 4;
  o.threads = 2;
  o.augment = false;
  o.shuffle = false;
  DataLoader loader(set.ds, o);
  EXPECT_EQ(loader.batches_per_epoch(), 3u);
  loader.start_epoch(0);
  Batch b;
  std::vector<int> sizes;
  size_t seen = 0;
  while (loader.next(b)) {
    sizes.push_back(b.size);
    const size_t B = static_cast<size_t>(b.size), G = static_cast<size_t>(b.max_boxes);
    ASSERT_EQ(b.images.size(), B * 3 * 48 * 48);
    ASSERT_EQ(b.boxes.size(), B * G * 4);
    ASSERT_EQ(b.labels.size(), B * G);
    ASSERT_EQ(b.valid.size(), B * G);
    ASSERT_EQ(b.indices.size(), B);
    const size_t I = static_cast<size_t>(b.max_ignored);
    ASSERT_EQ(b.ignore_boxes.size(), B * I * 4);
    size_t g_needed = 1, i_needed = 0;
    for (size_t i = 0; i < B; ++i) {
      const ImageRecord& rec = set.ds.images[static_cast<size_t>(b.indices[i])];
      EXPECT_EQ(b.indices[i], static_cast<int64_t>(seen + i));  // no shuffle
      EXPECT_EQ(b.widths[i], rec.width);
      std::vector<BoxAnnotation> targets, ignored;
      for (const auto& t : rec.boxes) (t.ignore ? ignored : targets).push_back(t);
      g_needed = std::max(g_needed, targets.size());
      i_needed = std::max(i_needed, ignored.size());
      for (size_t k = 0; k < I; ++k) {
        const float* r = &b.ignore_boxes[4 * (i * I + k)];
        if (k >= ignored.size()) {   // padding: an empty box
          EXPECT_EQ(r[0], 0.f);
          EXPECT_EQ(r[1], 0.f);
          EXPECT_EQ(r[2], 0.f);
          EXPECT_EQ(r[3], 0.f);
          continue;
        }
        EXPECT_NEAR(r[0], ignored[k].x1 / rec.width, 1e-5);
        EXPECT_NEAR(r[1], ignored[k].y1 / rec.height, 1e-5);
        EXPECT_NEAR(r[2], ignored[k].x2 / rec.width, 1e-5);
        EXPECT_NEAR(r[3], ignored[k].y2 / rec.height, 1e-5);
      }
      for (size_t k = 0; k < G; ++k) {
        const size_t j = i * G + k;
        ASSERT_EQ(b.valid[j], k < targets.size() ? 1 : 0);
        if (k >= targets.size()) continue;
        // No augmentation: boxes are the record's, scaled to [0, 1].
        EXPECT_NEAR(b.boxes[4 * j + 0], targets[k].x1 / rec.width, 1e-5);
        EXPECT_NEAR(b.boxes[4 * j + 1], targets[k].y1 / rec.height, 1e-5);
        EXPECT_NEAR(b.boxes[4 * j + 2], targets[k].x2 / rec.width, 1e-5);
        EXPECT_NEAR(b.boxes[4 * j + 3], targets[k].y2 / rec.height, 1e-5);
        EXPECT_EQ(b.labels[j], targets[k].label);
      }
    }
    EXPECT_EQ(static_cast<size_t>(b.max_boxes), g_needed);
    EXPECT_EQ(I, i_needed);
    seen += B;
  }
  EXPECT_EQ(sizes, (std::vector<int>{4, 4, 2}));
  EXPECT_FALSE(loader.next(b));
  // Normalisation: the first pixel of image 0 matches a direct computation.
  loader.start_epoch(0);
  ASSERT_TRUE(loader.next(b));
  cv::Mat rgb = load_rgb(set.ds.images[0]);
  cv::Mat small;
  cv::resize(rgb, small, cv::Size(48, 48), 0, 0, cv::INTER_AREA);
  EXPECT_NEAR(b.images[0], (small.at<cv::Vec3b>(0, 0)[0] / 255.0f - o.mean[0]) / o.std[0], 1e-5);

  o.drop_last = true;
  DataLoader dl(set.ds, o);
  EXPECT_EQ(dl.batches_per_epoch(), 2u);
}

// Every batch a loader with these options gives in epoch `epoch`.
std::vector<Batch> epoch_batches(const Dataset& ds, const LoaderOptions& o, int epoch) {
  DataLoader loader(ds, o);
  loader.start_epoch(epoch);
  std::vector<Batch> out;
  Batch b;
  while (loader.next(b)) out.push_back(b);
  return out;
}

TEST(Loader, DeterministicAcrossThreadCounts) {
  SynthSet set(12);
  LoaderOptions o;
  o.image_size = 40;
  o.batch_size = 5;
  o.seed = 11;
  auto run = [&](int threads, int epoch) {
    LoaderOptions oo = o;
    oo.threads = threads;
    return epoch_batches(set.ds, oo, epoch);
  };
  const auto a = run(1, 0), b = run(3, 0), c = run(2, 1);
  ASSERT_EQ(a.size(), 3u);
  ASSERT_EQ(a.size(), b.size());
  bool order_differs = false;
  std::set<int64_t> all;
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i].indices, b[i].indices);
    EXPECT_EQ(a[i].images, b[i].images);
    EXPECT_EQ(a[i].boxes, b[i].boxes);
    EXPECT_EQ(a[i].labels, b[i].labels);
    EXPECT_EQ(a[i].valid, b[i].valid);
    if (a[i].indices != c[i].indices) order_differs = true;
    all.insert(a[i].indices.begin(), a[i].indices.end());
    for (float v : a[i].boxes) {
      EXPECT_GE(v, 0.0f);
      EXPECT_LE(v, 1.0f);
    }
  }
  EXPECT_EQ(all.size(), 12u);  // a permutation
  EXPECT_TRUE(order_differs);  // another epoch, another order
}

// An image's augmentation is drawn from the epoch's seed and the image's index in the data set,
// not from its place in a batch: the same epoch gives each image the same pixels whatever the
// batch size.
TEST(Loader, AnImagesAugmentationDoesNotDependOnTheBatchSize) {
  SynthSet set(8);
  LoaderOptions o;
  o.image_size = 40;
  o.seed = 5;
  o.threads = 1;
  o.shuffle = false;
  auto images = [&](int batch) {
    LoaderOptions oo = o;
    oo.batch_size = batch;
    std::map<int64_t, std::vector<float>> by_index;
    for (const Batch& b : epoch_batches(set.ds, oo, 2)) {
      const size_t chw = b.images.size() / static_cast<size_t>(b.size);
      for (int i = 0; i < b.size; ++i)
        by_index[b.indices[static_cast<size_t>(i)]].assign(b.images.begin() + chw * i, b.images.begin() + chw * (i + 1));
    }
    return by_index;
  };
  const auto one = images(1), four = images(4), three = images(3);
  ASSERT_EQ(one.size(), 8u);
  EXPECT_EQ(one, four);
  EXPECT_EQ(one, three);
  int same = 0;   // (and the images do differ from one another)
  for (int64_t k = 1; k < 8; ++k) same += one.at(k) == one.at(0);
  EXPECT_EQ(same, 0);
}

TEST(Loader, WorkerErrorsReachTheConsumer) {
  SynthSet set(6);
  fs::remove(set.ds.images[4].path);
  LoaderOptions o;
  o.image_size = 32;
  o.batch_size = 2;
  o.shuffle = false;
  DataLoader loader(set.ds, o);
  loader.start_epoch(0);
  Batch b;
  EXPECT_TRUE(loader.next(b));
  EXPECT_TRUE(loader.next(b));
  expect_data_error([&] { loader.next(b); }, {"000004.png", "not found"});
  // A corrupt file and a size mismatch are errors too.
  write_text(set.ds.images[4].path, "not an image");
  expect_data_error([&] { load_rgb(set.ds.images[4]); }, {"000004.png", "cannot read or decode"});
  ImageRecord r = set.ds.images[1];
  r.width += 1;
  expect_data_error([&] { load_rgb(r); }, {"000001.png", "annotation says"});
}

TEST(Loader, ReadsImagesInTheirStoredPixelGridNotRotatedByExif) {
  // COCO and VOC boxes and sizes are in a file's stored pixel grid (pycocotools, PIL,
  // torchvision and VOC's tools do not apply an EXIF orientation), so the loader must not rotate
  // a JPEG whose EXIF says to, or its boxes would land on the wrong pixels.
  TempDir tmp;
  cv::Mat im(60, 100, CV_8UC3, cv::Scalar(0, 0, 0));
  cv::rectangle(im, cv::Rect(0, 0, 30, 20), cv::Scalar(0, 0, 255), cv::FILLED);   // red, top left
  std::vector<uchar> jpg;
  ASSERT_TRUE(cv::imencode(".jpg", im, jpg));
  auto with_orientation = [&](unsigned char orientation) {
    // APP1: "Exif", a big-endian TIFF header, one IFD entry: Orientation (0x0112), SHORT, 1.
    const unsigned char app1[] = {0xFF, 0xE1, 0x00, 0x22, 'E', 'x', 'i', 'f', 0, 0, 'M', 'M', 0,
                                  0x2A, 0, 0, 0, 8, 0, 1, 0x01, 0x12, 0, 3, 0, 0, 0, 1, 0,
                                  orientation, 0, 0, 0, 0, 0, 0};
    const std::string path = tmp / ("orientation" + std::to_string(orientation) + ".jpg");
    std::ofstream f(path, std::ios::binary);
    f.write(reinterpret_cast<const char*>(jpg.data()), 2);   // SOI
    f.write(reinterpret_cast<const char*>(app1), sizeof app1);
    f.write(reinterpret_cast<const char*>(jpg.data() + 2), static_cast<std::streamsize>(jpg.size() - 2));
    return path;
  };
  ImageRecord r;
  r.width = 100;
  r.height = 60;
  r.path = with_orientation(3);   // rotate 180
  // The tag is really there: OpenCV's default read applies it.
  const cv::Mat turned = cv::imread(r.path, cv::IMREAD_COLOR);
  ASSERT_GT(turned.at<cv::Vec3b>(55, 95)[2], 200);
  const cv::Mat rgb = load_rgb(r);
  EXPECT_GT(rgb.at<cv::Vec3b>(5, 5)[0], 200);    // red where the file stores it
  EXPECT_LT(rgb.at<cv::Vec3b>(55, 95)[0], 50);
  EXPECT_GT(read_bgr(r.path).at<cv::Vec3b>(5, 5)[2], 200);
  // Rotate 90: the annotation's 100x60 is the stored size, not a mismatch.
  r.path = with_orientation(6);
  ASSERT_EQ(cv::imread(r.path, cv::IMREAD_COLOR).cols, 60);
  const cv::Mat upright = load_rgb(r);
  EXPECT_EQ(upright.cols, 100);
  EXPECT_GT(upright.at<cv::Vec3b>(5, 5)[0], 200);
}

// A JPEG file cut short (an interrupted copy) still decodes, its missing rows grey, and the
// loader names it in a warning, once per file however often it is read; a whole file, or one
// with bytes after its end marker, gives none.
TEST(Loader, ATruncatedJpegIsNamedInAWarningOnce) {
  TempDir tmp;
  cv::Mat im(120, 160, CV_8UC3);
  cv::randu(im, 0, 255);   // noise: a large file, so that half of it is most of the rows
  std::vector<uchar> jpg;
  ASSERT_TRUE(cv::imencode(".jpg", im, jpg));
  auto write = [&](const std::string& name, size_t n, const std::string& tail) {
    const std::string path = tmp / name;
    std::ofstream f(path, std::ios::binary);
    f.write(reinterpret_cast<const char*>(jpg.data()), static_cast<std::streamsize>(n));
    f << tail;
    return path;
  };
  const auto whole = write("whole.jpg", jpg.size(), ""),
             trailing = write("trailing.jpg", jpg.size(), std::string(100, '\0') + "camera data"),
             cut = write("cut.jpg", jpg.size() / 2, "");
  for (const auto& path : {whole, trailing}) {
    ::testing::internal::CaptureStderr();
    EXPECT_EQ(read_bgr(path).size(), im.size());
    const std::string err = ::testing::internal::GetCapturedStderr();
    EXPECT_EQ(err.find("warning"), std::string::npos) << path << ": " << err;
  }
  ::testing::internal::CaptureStderr();
  const cv::Mat first = read_bgr(cut), second = read_bgr(cut);
  const std::string err = ::testing::internal::GetCapturedStderr();
  EXPECT_EQ(first.size(), im.size());
  const std::string warning = "warning: " + cut + ": the JPEG file ends early";
  const auto at = err.find(warning);
  EXPECT_NE(at, std::string::npos) << err;
  EXPECT_EQ(err.find(warning, at + 1), std::string::npos) << "warned twice:\n" << err;
  // A progressive JPEG cut short does not decode at all: the error says why.
  std::vector<uchar> progressive;
  ASSERT_TRUE(cv::imencode(".jpg", im, progressive, {cv::IMWRITE_JPEG_PROGRESSIVE, 1}));
  jpg = progressive;
  const auto cut_progressive = write("cut-progressive.jpg", jpg.size() / 2, "");
  try {
    read_bgr(cut_progressive);
    ADD_FAILURE() << "a progressive JPEG cut in half decoded";
  } catch (const DataError& e) {
    EXPECT_NE(std::string(e.what()).find(cut_progressive + ": the JPEG file ends early"), std::string::npos) << e.what();
  }
}

// An image the system will not open says why: under a low ulimit -n, "Too many open files" is the
// limit's doing, not a bad image's (it said only "cannot read image file").
TEST(Loader, AnImageThatCannotBeOpenedSaysWhy) {
  TempDir d;
  const fs::path path = d.path() / "good.png";
  write_image(path, 16, 16);
  struct rlimit old_limit;
  ASSERT_EQ(getrlimit(RLIMIT_NOFILE, &old_limit), 0);
  const int lowest_free = dup(0);   // (a limit at the lowest free descriptor: the next open fails)
  ASSERT_GE(lowest_free, 0);
  close(lowest_free);
  struct rlimit none_left = old_limit;
  none_left.rlim_cur = static_cast<rlim_t>(lowest_free);
  ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &none_left), 0);
  std::string message;
  try {
    read_bgr(path.string());
  } catch (const DataError& e) {
    message = e.what();
  }
  setrlimit(RLIMIT_NOFILE, &old_limit);
  EXPECT_EQ(message, path.string() + ": cannot read image file: " + std::strerror(EMFILE));
  EXPECT_EQ(read_bgr(path.string()).size(), cv::Size(16, 16));
}

TEST(Loader, MeasuresThroughput) {
  SynthSet set(8);
  LoaderOptions o;
  o.image_size = 32;
  o.batch_size = 4;
  const LoaderThroughput t = measure_loader_throughput(set.ds, o);
  EXPECT_EQ(t.images, 8u);
  EXPECT_GT(t.seconds, 0.0);
  EXPECT_GT(t.images_per_second, 0.0);
}

TEST(Rng, FixedSequencesAndRanges) {
  Rng a(123), b(123), c(124);
  bool differs = false;
  for (int i = 0; i < 100; ++i) {
    const double u = a.uniform();
    EXPECT_EQ(u, b.uniform());
    if (u != c.uniform()) differs = true;
    EXPECT_GE(u, 0.0);
    EXPECT_LT(u, 1.0);
    const int64_t k = a.uniform_int(-3, 3);
    b.uniform_int(-3, 3);
    EXPECT_GE(k, -3);
    EXPECT_LE(k, 3);
  }
  EXPECT_TRUE(differs);
}

// The shuffle reaches every order: over 600 seeds each of the 6 orders of three, and an element
// stays in place as often as chance says (Sattolo's variant, a one-off in the draw's range,
// gives cyclic orders only: 2 of the 6, nothing ever in place).
TEST(Rng, ShuffleReachesEveryOrder) {
  std::set<std::vector<int>> orders;
  int first_stays = 0;
  for (uint64_t seed = 0; seed < 600; ++seed) {
    Rng r(seed);
    std::vector<int> v{0, 1, 2};
    r.shuffle(v);
    orders.insert(v);
    first_stays += v[0] == 0;
  }
  EXPECT_EQ(orders.size(), 6u);
  EXPECT_GT(first_stays, 140);   // 200 expected
  EXPECT_LT(first_stays, 260);
}

// A file written atomically replaces its path whole; when it cannot be (here the path is a
// folder) the error names it and no PATH.tmp is left behind.
TEST(AtomicFile, AFailedWriteLeavesNoTemporaryFile) {
  TempDir tmp;
  const auto file = tmp.path() / "out.json";
  write_file_atomic(file, "one");
  write_file_atomic(file, "two");
  std::ifstream in(file);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_EQ(text, "two");
  // A file replaced keeps its permissions (a private 0600 output became the umask's 0644).
  std::filesystem::permissions(file, std::filesystem::perms::owner_read | std::filesystem::perms::owner_write,
                               std::filesystem::perm_options::replace);
  write_file_atomic(file, "private");
  EXPECT_EQ(std::filesystem::status(file).permissions(),
            std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
  const auto folder = tmp.path() / "a-folder";
  std::filesystem::create_directories(folder / "inside");
  try {
    write_file_atomic(folder, "three");
    ADD_FAILURE() << "writing over a folder must fail";
  } catch (const std::exception& e) {
    EXPECT_NE(std::string(e.what()).find(folder.string()), std::string::npos) << e.what();
  }
  EXPECT_FALSE(std::filesystem::exists(folder.string() + ".tmp"));
  EXPECT_TRUE(std::filesystem::is_directory(folder / "inside"));
  EXPECT_FALSE(std::filesystem::exists(file.string() + ".tmp"));
}
