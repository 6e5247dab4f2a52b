// mAP: hand-checked cases, and a cross-check against pycocotools' COCOeval and the Pascal VOC
// reference code (tests/training/coco_reference.py, run with $SSD_PYTHON).
#include <gtest/gtest.h>

#include <pty.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <numeric>
#include <cstdlib>
#include <filesystem>
#include <sstream>
#include <fstream>
#include <stdexcept>
#include <string>

#include <nlohmann/json.hpp>

#include "../python_reference.h"
#include "evaluate.h"
#include "caption.h"
#include "plots.h"
#include "progress.h"
#include "text.h"

using ssdtrain::BoxAnnotation;
using ssdtrain::MapEvaluator;
using ssdtrain::MapResult;
using ssdtrain::ScoredBox;

namespace {

BoxAnnotation gt(float x1, float y1, float x2, float y2, int label, bool ignore = false) {
  BoxAnnotation b;
  b.x1 = x1; b.y1 = y1; b.x2 = x2; b.y2 = y2; b.label = label; b.ignore = ignore;
  return b;
}

ScoredBox det(float x1, float y1, float x2, float y2, int label, float score) {
  ScoredBox d;
  d.x1 = x1; d.y1 = y1; d.x2 = x2; d.y2 = y2; d.label = label; d.score = score;
  return d;
}

}  // namespace

TEST(Map, PerfectDetectionsScoreOne) {
  MapEvaluator ev({"a", "b"});
  ev.add_image(1, {gt(0, 0, 10, 10, 0), gt(20, 20, 40, 50, 1)},
               {det(0, 0, 10, 10, 0, 0.9f), det(20, 20, 40, 50, 1, 0.8f)});
  ev.add_image(2, {gt(5, 5, 15, 15, 1)}, {det(5, 5, 15, 15, 1, 0.7f)});
  MapResult r = ev.compute();
  EXPECT_NEAR(r.map50_voc07, 1.0, 1e-12);
  EXPECT_NEAR(r.map50_voc, 1.0, 1e-12);
  EXPECT_NEAR(r.map_coco, 1.0, 1e-12);
  EXPECT_NEAR(r.map50_coco, 1.0, 1e-12);
  ASSERT_EQ(r.classes.size(), 2u);
  EXPECT_EQ(r.classes[1].num_gt, 2);
}

TEST(Map, NoDetectionsScoreZeroAndEmptyClassIsLeftOut) {
  MapEvaluator ev({"a", "b", "never"});
  ev.add_image(1, {gt(0, 0, 10, 10, 0), gt(0, 0, 10, 10, 1)}, {det(0, 0, 10, 10, 0, 0.5f)});
  MapResult r = ev.compute();
  EXPECT_TRUE(r.classes[0].valid);
  EXPECT_TRUE(r.classes[1].valid);
  EXPECT_FALSE(r.classes[2].valid);
  EXPECT_NEAR(r.classes[1].ap_coco, 0.0, 1e-12);
  EXPECT_NEAR(r.map50_voc, 0.5, 1e-12);   // (1 + 0) / 2: the empty class is not averaged
}

TEST(Map, HighScoringFalsePositiveHalvesPrecision) {
  // One ground truth; a false positive outranks the true positive: precision 0.5 at recall 1.
  MapEvaluator ev({"a"});
  ev.add_image(1, {gt(0, 0, 10, 10, 0)},
               {det(50, 50, 60, 60, 0, 0.9f), det(0, 0, 10, 10, 0, 0.8f)});
  MapResult r = ev.compute();
  EXPECT_NEAR(r.map50_voc, 0.5, 1e-12);
  EXPECT_NEAR(r.map50_voc07, 0.5, 1e-12);
  EXPECT_NEAR(r.map50_coco, 0.5, 1e-12);
  // Below the false positive's score the ranking is clean.
  MapEvaluator ev2({"a"});
  ev2.add_image(1, {gt(0, 0, 10, 10, 0)},
                {det(50, 50, 60, 60, 0, 0.7f), det(0, 0, 10, 10, 0, 0.8f)});
  EXPECT_NEAR(ev2.compute().map50_voc, 1.0, 1e-12);
}

// COCO counts each image's max_dets (by default 100, pycocotools' maxDets) highest-scoring
// detections of a class: a hit ranked just below them is not seen, one ranked last among them is
// (VOC's AP has no cap and sees both).
TEST(Map, CocoCountsAnImagesFirstMaxDetsDetections) {
  for (const int cap : {100, 3}) {
    for (const bool inside : {false, true}) {
      SCOPED_TRACE("max_dets " + std::to_string(cap) + (inside ? ", hit ranked last of them" : ", hit ranked after them"));
      ssdtrain::MapOptions o;   // (100 by default)
      if (cap != 100) o.max_dets = cap;
      MapEvaluator ev({"a"}, o);
      std::vector<ScoredBox> dets;
      const int misses = inside ? cap - 1 : cap;
      for (int k = 0; k < misses; ++k) dets.push_back(det(50 + k, 50, 60 + k, 60, 0, 0.9f - 0.001f * k));
      dets.push_back(det(0, 0, 10, 10, 0, 0.5f));
      ev.add_image(1, {gt(0, 0, 10, 10, 0)}, dets);
      const MapResult r = ev.compute();
      ASSERT_TRUE(r.classes[0].valid);
      EXPECT_NEAR(r.map50_coco, inside ? 1.0 / cap : 0.0, 1e-9);
      EXPECT_NEAR(r.classes[0].ar100, inside ? 1.0 : 0.0, 1e-12);
      EXPECT_NEAR(r.map50_voc, 1.0 / (misses + 1), 1e-9);
    }
  }
}

// The best-F1 threshold: two ground truths; detections 0.9 (hit), 0.8 (miss), 0.7 (hit), 0.1
// (miss). F1 above each: 0.667, 0.5, 0.8, 0.667; the best cut lies between 0.7 and 0.1. Equal
// scores are not split; the lowest cut lies halfway to the score floor.
TEST(Map, BestF1ThresholdLiesBetweenTheScoresItSeparates) {
  ssdtrain::MapOptions o;
  o.score_floor = 0.05;
  MapEvaluator ev({"a", "b", "c"}, o);
  ev.add_image(1, {gt(0, 0, 10, 10, 0), gt(20, 20, 30, 30, 0), gt(0, 0, 10, 10, 1), gt(0, 0, 10, 10, 2)},
               {det(0, 0, 10, 10, 0, 0.9f), det(50, 50, 60, 60, 0, 0.8f), det(20, 20, 30, 30, 0, 0.7f),
                det(70, 70, 80, 80, 0, 0.1f),
                // b: a hit and a miss with the same score, then nothing: only the cut below both
                det(0, 0, 10, 10, 1, 0.6f), det(50, 50, 60, 60, 1, 0.6f),
                // c: one hit, the lowest cut: halfway between its score and the floor
                det(0, 0, 10, 10, 2, 0.25f)});
  const MapResult r = ev.compute();
  EXPECT_NEAR(r.classes[0].best_f1, 0.8, 1e-12);
  EXPECT_NEAR(r.classes[0].f1_threshold, (0.7 + 0.1) / 2, 1e-6);
  EXPECT_NEAR(r.classes[0].f1_precision, 2.0 / 3.0, 1e-12);
  EXPECT_NEAR(r.classes[0].f1_recall, 1.0, 1e-12);
  EXPECT_NEAR(r.classes[1].best_f1, 2 * 0.5 * 1 / 1.5, 1e-12);
  EXPECT_NEAR(r.classes[1].f1_threshold, (0.6 + 0.05) / 2, 1e-6);
  EXPECT_NEAR(r.classes[2].best_f1, 1.0, 1e-12);
  EXPECT_NEAR(r.classes[2].f1_threshold, (0.25 + 0.05) / 2, 1e-6);
  EXPECT_EQ(ssdtrain::f1_class_thresholds(r), "a=0.400,b=0.325,c=0.150");
  // No hit: no threshold.
  MapEvaluator none({"a"});
  none.add_image(1, {gt(0, 0, 10, 10, 0)}, {det(50, 50, 60, 60, 0, 0.9f)});
  EXPECT_EQ(none.compute().classes[0].f1_threshold, -1);
}

// Class names shorter than the header's "class" are padded to its width: every row of the table
// lines up with the header.
TEST(Map, TableColumnsLineUpWithShortClassNames) {
  MapEvaluator ev({"a", "bc"});
  ev.add_image(1, {gt(0, 0, 10, 10, 0)}, {det(0, 0, 10, 10, 0, 0.9f)});
  const std::string table = ssdtrain::format_map_table(ev.compute());
  std::istringstream in(table);
  std::vector<std::string> lines;
  for (std::string l; lines.size() < 4 && std::getline(in, l);) lines.push_back(l);
  ASSERT_EQ(lines.size(), 4u) << table;   // header, a, bc, mean
  EXPECT_EQ(lines[0].rfind("class ", 0), 0u) << table;
  EXPECT_EQ(lines[1].rfind("a     ", 0), 0u) << table;
  EXPECT_EQ(lines[2].rfind("bc    ", 0), 0u) << table;
  EXPECT_EQ(lines[3].rfind("mean  ", 0), 0u) << table;
  for (size_t i = 1; i < lines.size(); ++i) EXPECT_EQ(lines[i].size(), lines[0].size()) << table;
}

// Detections kept down to a score of 0 (a score floor of 0): a class whose one hit scored 0 has a
// best F1 all the same, cut at 0, and the table gives it; only a class without any hit (-1) is
// listed as having none.
TEST(Map, ABestF1CutAtZeroIsInTheTable) {
  MapEvaluator ev({"a", "b"});
  ev.add_image(1, {gt(0, 0, 10, 10, 0), gt(20, 20, 30, 30, 1)},
               {det(0, 0, 10, 10, 0, 0.0f), det(50, 50, 60, 60, 1, 0.9f)});
  const MapResult r = ev.compute();
  EXPECT_EQ(r.classes[0].f1_threshold, 0.0);
  EXPECT_NEAR(r.classes[0].best_f1, 1.0, 1e-12);
  EXPECT_EQ(r.classes[1].f1_threshold, -1);
  EXPECT_EQ(ssdtrain::f1_class_thresholds(r), "a=0.000");
  const std::string table = ssdtrain::format_map_table(r);
  EXPECT_NE(table.find("Best F1 at IoU 0.5 per class: a F1 1.000 (P 1.000, R 1.000) above 0.000\n"), std::string::npos)
      << table;
  EXPECT_NE(table.find("keeping ssddetect's threshold: b)"), std::string::npos) << table;
}

// The confusion matrix: class-agnostic matching above the confidence threshold, most confident
// first; a detection on an ignored region counts nowhere; a second detection of a matched object
// is a false detection.
TEST(Map, ConfusionMatrixCountsMixUpsMissesAndFalseDetections) {
  MapEvaluator ev({"a", "b"});
  ev.add_image(1, {gt(0, 0, 10, 10, 0), gt(20, 20, 30, 30, 1), gt(50, 50, 60, 60, 0, true)},
               {det(0, 0, 10, 10, 1, 0.9f),      // a taken for b
                det(20, 20, 30, 30, 1, 0.8f),    // b right
                det(50, 50, 60, 60, 0, 0.7f),    // on the ignored region
                det(80, 80, 90, 90, 0, 0.6f),    // nothing there
                det(21, 21, 30, 30, 0, 0.5f),    // b again, already matched
                det(0, 0, 10, 10, 0, 0.2f)});    // below the threshold (0.3)
  ev.add_image(2, {gt(0, 0, 10, 10, 0)}, {});   // missed
  const MapResult r = ev.compute();
  const std::vector<std::vector<int>> expected{{0, 1, 1}, {0, 1, 0}, {2, 0, 0}};
  EXPECT_EQ(r.confusion, expected);
  const std::string text = ssdtrain::format_confusion(r);
  EXPECT_NE(text.find("none"), std::string::npos) << text;
}

// With many classes the text gives the largest mix-ups instead of a table, and the picture stays
// about 2,400 pixels wide (at 600 classes it was 33,760 pixels, 3.7 GB while drawing).
TEST(Map, ConfusionOfManyClassesStaysReadableAndSmall) {
  std::vector<std::string> labels;
  for (int i = 0; i < 600; ++i) labels.push_back("c" + std::to_string(i));
  MapEvaluator ev(labels);
  ev.add_image(1, {gt(0, 0, 10, 10, 0), gt(20, 20, 30, 30, 1), gt(40, 40, 50, 50, 2), gt(60, 60, 70, 70, 0)},
               {det(0, 0, 10, 10, 5, 0.9f), det(20, 20, 30, 30, 1, 0.8f), det(60, 60, 70, 70, 5, 0.7f)});
  const MapResult r = ev.compute();
  const std::string text = ssdtrain::format_confusion(r);
  EXPECT_NE(text.find("1 of 4 objects found and named right; 600 classes"), std::string::npos) << text;
  EXPECT_LT(text.find("c0 -> c5: 2"), text.find("c2 -> none: 1")) << text;   // largest first
  EXPECT_EQ(std::count(text.begin(), text.end(), '\n'), 3) << text;
  const cv::Mat picture = ssdtrain::render_confusion(r);
  EXPECT_LE(picture.cols, 2600);
  EXPECT_LE(picture.rows, 2600);
  // Up to 20 classes: the table.
  MapEvaluator few({"a", "b"});
  few.add_image(1, {gt(0, 0, 10, 10, 0)}, {det(0, 0, 10, 10, 1, 0.9f)});
  EXPECT_NE(ssdtrain::format_confusion(few.compute()).find("true\\det"), std::string::npos);
}

// The tables line class names up by the columns they take (they were padded by bytes: the rows
// of non-ASCII names sat left of their headers), and a long name is printed whole (the F1 line
// cut it at 128 bytes).
TEST(Map, TablesLineUpNamesByTheirColumns) {
  const std::string long_name(300, 'n');
  const std::vector<std::string> labels{"Rechteck gr\u00f6\u00dfer",
                                        "\u0442\u0440\u0435\u0443\u0433\u043e\u043b\u044c\u043d\u0438\u043a",
                                        "\u661f star", "a", long_name};
  MapEvaluator ev(labels);
  for (int c = 0; c < 5; ++c) ev.add_image(c, {gt(0, 0, 10, 10, c)}, {det(0, 0, 10, 10, c, 0.9f)});
  const MapResult r = ev.compute();
  const auto lines_of = [](const std::string& text) {
    std::vector<std::string> lines;
    std::istringstream in(text);
    for (std::string l; std::getline(in, l);) lines.push_back(l);
    return lines;
  };
  const auto table = lines_of(ssdtrain::format_map_table(r));
  ASSERT_GE(table.size(), 7u);
  for (size_t i = 1; i < 7; ++i)   // header, five classes, mean
    EXPECT_EQ(ssd::display_width(table[i]), ssd::display_width(table[0])) << table[i];
  EXPECT_NE(ssdtrain::format_map_table(r).find(long_name + " F1 1.000"), std::string::npos);
  const auto confusion = lines_of(ssdtrain::format_confusion(r));
  ASSERT_GE(confusion.size(), 8u);   // title, header, five classes, none
  for (size_t i = 2; i < 8; ++i)
    EXPECT_EQ(ssd::display_width(confusion[i]), ssd::display_width(confusion[1])) << confusion[i];
}

// The class-thresholds line is ready to paste into a shell's gst-launch-1.0 line: plain names in
// the shell's double quotes; a class named with a quote has it escaped inside gst-launch's own
// quotes, the word in single quotes (the shell's double quotes ended at it, or passed gst-launch a
// bare quote), and predict's form beside it.
TEST(Map, ClassThresholdsLineQuotesForTheShell) {
  const auto line_of = [](const std::vector<std::string>& labels) {
    MapEvaluator ev(labels);
    for (int c = 0; c < 2; ++c) ev.add_image(c, {gt(0, 0, 10, 10, c)}, {det(0, 0, 10, 10, c, 0.9f)});
    const std::string table = ssdtrain::format_map_table(ev.compute());
    const size_t at = table.find("As ssddetect's property: ");
    return at == std::string::npos ? table : table.substr(at, table.find('\n', at) - at);
  };
  const std::string plain = line_of({"a", "b $x"});
  EXPECT_EQ(plain.rfind("As ssddetect's property: class-thresholds=\"a=0.", 0), 0u) << plain;
  EXPECT_NE(plain.find(",b \\$x=0."), std::string::npos) << plain;
  EXPECT_NE(plain.find("\" (ssd-train predict: --class-thresholds)"), std::string::npos) << plain;
  const std::string quoted = line_of({"a", "\u00d6lkanne \"gro\u00df\""});
  EXPECT_EQ(quoted.rfind("As ssddetect's property: 'class-thresholds=\"a=0.", 0), 0u) << quoted;
  EXPECT_NE(quoted.find(",\u00d6lkanne \\\"gro\u00df\\\"=0."), std::string::npos) << quoted;
  EXPECT_NE(quoted.find("\"' (ssd-train predict: --class-thresholds \"a=0."), std::string::npos) << quoted;
  // Thresholds picked on detections with NMS across classes (eval --class-agnostic-nms) are
  // pasted with it: with per-class NMS they would hold other detections.
  MapEvaluator ev({"a", "b"});
  for (int c = 0; c < 2; ++c) ev.add_image(c, {gt(0, 0, 10, 10, c)}, {det(0, 0, 10, 10, c, 0.9f)});
  ssdtrain::MapResult r = ev.compute();
  r.class_agnostic_nms = true;
  const std::string table = ssdtrain::format_map_table(r);
  EXPECT_NE(table.find("As ssddetect's properties: class-agnostic-nms=true class-thresholds=\"a=0."), std::string::npos)
      << table;
  EXPECT_NE(table.find("(ssd-train predict: --class-agnostic-nms --class-thresholds)"), std::string::npos) << table;
}

// Class names in the pictures are drawn in their own script where the build has Pango (the
// Hershey font drew each byte of a non-ASCII name as '?': "треугольник" as 22 of them).
TEST(Map, PicturesDrawClassNamesInTheirOwnScript) {
  if (!gstssd::have_pango()) GTEST_SKIP() << "built without Pango: names are drawn in OpenCV's Hershey font (ASCII)";
  const auto confusion_of = [](const std::string& name) {
    MapEvaluator ev({name, "b"});
    ev.add_image(1, {gt(0, 0, 10, 10, 0)}, {det(0, 0, 10, 10, 0, 0.9f)});
    return ssdtrain::render_confusion(ev.compute());
  };
  const std::string cyrillic = "\u0442\u0440\u0435\u0443\u0433\u043e\u043b\u044c\u043d\u0438\u043a";
  const cv::Mat named = confusion_of(cyrillic), marks = confusion_of(std::string(cyrillic.size(), '?'));
  EXPECT_TRUE(named.size() != marks.size() || cv::norm(named, marks, cv::NORM_L1) > 0)
      << "the name was drawn as question marks";
  // The same name drawn twice, the same pixels (nothing random in the text).
  EXPECT_EQ(cv::norm(named, confusion_of(cyrillic), cv::NORM_L1), 0);
}

// A bar ended early (lr-find stopping where the loss diverged) closes on the steps done (it
// said 100/100 after 88).
TEST(Progress, AClosingLineGivesTheStepsDone) {
  std::FILE* f = std::tmpfile();
  ASSERT_NE(f, nullptr);
  {
    ssdtrain::ProgressBar bar("lr-find", 100, f, 0.0);   // (a log: every update and a closing line)
    bar.update(88, "loss 1.0");
    bar.finish();
  }
  std::rewind(f);
  std::string text(4096, '\0');
  text.resize(std::fread(text.data(), 1, text.size(), f));
  std::fclose(f);
  const std::string last = text.substr(text.rfind("lr-find"));
  EXPECT_NE(last.find(" 88/100 "), std::string::npos) << text;
}

// On a terminal the bar fits its width (a line of about 75 columns wrapped on a narrow one, and
// each redraw left the wrapped part behind); a dumb terminal (TERM=dumb, as Emacs' compilation
// buffers) gets plain lines, without escape sequences.
TEST(Progress, TheBarFitsTheTerminalAndADumbOneGetsPlainLines) {
  for (const char* term : {"xterm", "dumb"}) {
    SCOPED_TRACE(term);
    int master = -1, slave = -1;
    struct winsize ws {};
    ws.ws_col = 40;
    ws.ws_row = 24;
    ASSERT_EQ(::openpty(&master, &slave, nullptr, nullptr, &ws), 0);
    const char* saved = std::getenv("TERM");
    const std::string old_term = saved ? saved : "";
    ::setenv("TERM", term, 1);
    std::FILE* out = ::fdopen(slave, "w");
    ASSERT_NE(out, nullptr);
    {
      ssdtrain::ProgressBar bar("epoch 1/10", 100, out, 0.0);
      EXPECT_EQ(ssdtrain::terminal_columns(out), std::string(term) == "dumb" ? 0 : 40);
      bar.update(100, "loss 1.234 a long remark about the loss");
    }
    std::fclose(out);
    if (saved) ::setenv("TERM", old_term.c_str(), 1);
    else ::unsetenv("TERM");
    std::string text;
    char buf[4096];
    for (ssize_t n; (n = ::read(master, buf, sizeof buf)) > 0;) text.append(buf, static_cast<size_t>(n));
    ::close(master);
    if (std::string(term) == "dumb") {
      EXPECT_EQ(text.find('\033'), std::string::npos) << text;
      EXPECT_NE(text.find("epoch 1/10 100/100"), std::string::npos) << text;
    } else {
      EXPECT_NE(text.find("\r\033[K"), std::string::npos) << text;
      // Each drawn line (between carriage returns and clears) within 39 columns.
      size_t at = 0;
      while ((at = text.find("\033[K", at)) != std::string::npos) {
        at += 3;
        const size_t end = text.find_first_of("\r\n", at);
        EXPECT_LE((end == std::string::npos ? text.size() : end) - at, 39u) << text;
      }
      EXPECT_NE(text.find("epoch 1/10"), std::string::npos) << text;
    }
  }
}

TEST(Map, IouThresholdsMatter) {
  // IoU of [0,10]x[0,10] with [0,10]x[0,14] = 100/140 = 0.714: a hit at 0.5..0.7, a miss above.
  MapEvaluator ev({"a"});
  ev.add_image(1, {gt(0, 0, 10, 10, 0)}, {det(0, 0, 10, 14, 0, 0.9f)});
  MapResult r = ev.compute();
  EXPECT_NEAR(r.map50_coco, 1.0, 1e-12);
  EXPECT_NEAR(r.map75_coco, 0.0, 1e-12);
  EXPECT_NEAR(r.map_coco, 5.0 / 10.0, 1e-12);   // thresholds 0.50..0.70 hit
}

TEST(Map, IgnoredGroundTruthNeitherHelpsNorHurts) {
  MapEvaluator ev({"a"});
  ev.add_image(1, {gt(0, 0, 10, 10, 0), gt(100, 100, 200, 200, 0, /*ignore=*/true)},
               {det(0, 0, 10, 10, 0, 0.5f), det(110, 110, 150, 150, 0, 0.9f),
                det(120, 120, 190, 190, 0, 0.8f)});
  MapResult r = ev.compute();
  EXPECT_EQ(r.classes[0].num_gt, 1);
  // COCO crowd semantics: both detections inside the ignore region are ignored.
  EXPECT_NEAR(r.map50_coco, 1.0, 1e-12);
  // VOC difficult: (120,120,190,190) has IoU 0.49 with it: a false positive; the other has
  // IoU 0.16: also a false positive -> precision 1/3 at recall 1.
  EXPECT_NEAR(r.map50_voc, 1.0 / 3.0, 1e-12);
}

// Boundaries, as pycocotools and the VOC devkit draw them. An IoU of exactly 0.5 is a hit for
// COCO (IoU >= t) and a miss for VOC (ovmax > 0.5). A false detection whose area is exactly an
// area range's bound (32 x 32) counts in that range (pycocotools ignores it only when a < lo or
// a > hi): it outranks the medium object's hit, so the medium AP is 0.5.
TEST(Map, BoundariesAreTheReferencesOwn) {
  MapEvaluator half({"a"});
  half.add_image(1, {gt(0, 0, 10, 10, 0)}, {det(0, 0, 10, 20, 0, 0.9f)});   // IoU 100/200
  const MapResult h = half.compute();
  EXPECT_NEAR(h.map50_coco, 1.0, 1e-12);
  EXPECT_NEAR(h.map50_voc, 0.0, 1e-12);
  EXPECT_NEAR(h.map50_voc07, 0.0, 1e-12);
  MapEvaluator edge({"a"});
  edge.add_image(1, {gt(200, 200, 250, 250, 0)}, {det(0, 0, 32, 32, 0, 0.9f), det(200, 200, 250, 250, 0, 0.8f)});
  const MapResult e = edge.compute();
  EXPECT_NEAR(e.map_medium, 0.5, 1e-12);
  EXPECT_NEAR(e.map_coco, 0.5, 1e-12);
  EXPECT_EQ(e.map_small, -1) << "no small object";
}

TEST(Map, BadLabelsAndDuplicateImagesThrow) {
  MapEvaluator ev({"a"});
  EXPECT_THROW(ev.add_image(1, {gt(0, 0, 1, 1, 1)}, {}), std::invalid_argument);
  EXPECT_THROW(ev.add_image(1, {}, {det(0, 0, 1, 1, -1, 0.5f)}), std::invalid_argument);
  ev.add_image(7, {}, {});
  EXPECT_THROW(ev.add_image(7, {}, {}), std::invalid_argument);
}

TEST(Map, VocApFormulas) {
  // Recall 0.5 at precision 1, then recall 1 at precision 0.5.
  std::vector<double> rec{0.5, 0.5, 1.0}, prec{1.0, 0.5, 2.0 / 3.0};
  EXPECT_NEAR(ssdtrain::voc_ap(rec, prec, false), 0.5 * 1.0 + 0.5 * (2.0 / 3.0), 1e-12);
  EXPECT_NEAR(ssdtrain::voc_ap(rec, prec, true), (6 * 1.0 + 5 * (2.0 / 3.0)) / 11.0, 1e-12);
}

// ------------------------------------------------------------------------------------------
// Cross-check against pycocotools and the VOC reference.

TEST(Map, AgreesWithPycocotoolsAndVocReference) {
  const char* python = std::getenv("SSD_PYTHON");
  const char* script = std::getenv("SSD_COCO_REFERENCE");
  if (python) SSD_NEED_PYTHON(std::string(python), "numpy pycocotools");
  ASSERT_TRUE(python && script)
      << "set SSD_PYTHON (a Python with numpy + pycocotools) and SSD_COCO_REFERENCE "
         "(tests/training/coco_reference.py); meson test sets both";
  const std::filesystem::path out = std::filesystem::temp_directory_path() /
                                    ("ssd_map_ref_" + std::to_string(::getpid()) + ".json");
  const std::string cmd = std::string("\"") + python + "\" \"" + script + "\" \"" +
                          out.string() + "\"";
  ASSERT_EQ(std::system(cmd.c_str()), 0) << "failed: " << cmd;
  nlohmann::json ref;
  {
    std::ifstream f(out);
    ASSERT_TRUE(f.good());
    f >> ref;
  }
  std::filesystem::remove(out);
  ASSERT_EQ(ref["cases"].size(), 5u);
  int compared = 0, degenerate = 0;
  for (const auto& c : ref["cases"]) {
    const auto labels = c["labels"].get<std::vector<std::string>>();
    MapEvaluator ev(labels);
    for (const auto& im : c["images"]) {
      std::vector<BoxAnnotation> gts;
      std::vector<ScoredBox> dets;
      for (const auto& g : im["gts"]) {
        const float x = g[0], y = g[1], w = g[2], h = g[3];
        gts.push_back(gt(x, y, x + w, y + h, g[4].get<int>(), g[5].get<int>() != 0));
        gts.back().area = g[6].get<float>();   // COCO's "area", not always the box's
      }
      for (const auto& d : im["dets"]) {
        const float x = d[0], y = d[1], w = d[2], h = d[3];
        dets.push_back(det(x, y, x + w, y + h, d[4].get<int>(), d[5].get<float>()));
      }
      ev.add_image(im["id"].get<int64_t>(), gts, dets);
    }
    const MapResult r = ev.compute();
    SCOPED_TRACE("case seed " + std::to_string(c["spec"]["seed"].get<int>()));
    ASSERT_EQ(r.classes.size(), labels.size());
    for (size_t k = 0; k < labels.size(); ++k) {
      const auto& pc = c["coco"]["per_class"][k];
      const auto& pv = c["voc"][k];
      SCOPED_TRACE("class " + std::to_string(k));
      ASSERT_EQ(r.classes[k].valid, pc["valid"].get<bool>());
      ASSERT_EQ(r.classes[k].valid, pv["valid"].get<bool>());
      if (!r.classes[k].valid) continue;
      EXPECT_NEAR(r.classes[k].ap_coco, pc["ap"].get<double>(), 1e-4);
      EXPECT_NEAR(r.classes[k].ap50_coco, pc["ap50"].get<double>(), 1e-4);
      EXPECT_NEAR(r.classes[k].ap75_coco, pc["ap75"].get<double>(), 1e-4);
      EXPECT_NEAR(r.classes[k].recall50, pc["recall50"].get<double>(), 1e-4);
      EXPECT_NEAR(r.classes[k].ap50_voc07, pv["ap07"].get<double>(), 1e-4);
      EXPECT_NEAR(r.classes[k].ap50_voc, pv["ap"].get<double>(), 1e-4);
      // The curve pr_curve.png draws: its 101-point mean (zeros past its end) is AP@0.5.
      const auto& pr = r.classes[k].pr50;
      EXPECT_LE(pr.size(), 101u);
      EXPECT_NEAR(std::accumulate(pr.begin(), pr.end(), 0.0) / 101, pc["ap50"].get<double>(), 1e-4);
      EXPECT_TRUE(std::is_sorted(pr.rbegin(), pr.rend())) << "interpolated precision never rises with recall";
      ++compared;
    }
    EXPECT_NEAR(r.map_coco, c["coco"]["map"].get<double>(), 1e-4);
    EXPECT_NEAR(r.map50_coco, c["coco"]["map50"].get<double>(), 1e-4);
    EXPECT_NEAR(r.map75_coco, c["coco"]["map75"].get<double>(), 1e-4);
    // pycocotools' whole summary (COCOeval.stats).
    const auto stats = c["coco"]["stats"].get<std::vector<double>>();
    ASSERT_EQ(stats.size(), 12u);
    const double ours[12] = {r.map_coco, r.map50_coco, r.map75_coco, r.map_small, r.map_medium, r.map_large,
                             r.ar1,      r.ar10,       r.ar100,      r.ar_small,  r.ar_medium,  r.ar_large};
    for (int i = 0; i < 12; ++i) EXPECT_NEAR(ours[i], stats[i], 1e-4) << "COCOeval.stats[" << i << "]";
    if (std::none_of(r.classes.begin(), r.classes.end(), [](const auto& k) { return k.valid; })) {
      // Only crowd regions: no mean at all (pycocotools' -1), in the VOC metrics too, and the
      // table prints "-" rather than an AP of 0.
      for (double m : {r.map50_voc07, r.map50_voc, r.map_coco}) EXPECT_EQ(m, -1.0);
      const std::string table = ssdtrain::format_map_table(r);
      const std::string mean = table.substr(table.find("\nmean"), table.find('\n', table.find("\nmean") + 1) - table.find("\nmean"));
      EXPECT_EQ(mean.find("0.0000"), std::string::npos) << mean;
      EXPECT_EQ(std::count(mean.begin(), mean.end(), '-'), 5) << mean;
      ++degenerate;
      continue;
    }
    // Not a degenerate comparison: the detections are imperfect.
    EXPECT_GT(r.map_coco, 0.05);
    EXPECT_LT(r.map_coco, 0.95);
  }
  EXPECT_EQ(degenerate, 1);
  EXPECT_GE(compared, 12);
}
