// Example application embedding the `ssd` plugin: builds a pipeline around ssddetect, reads
// the detections in a pad probe and prints them, with their tracking ids.
//
//   ssd-example-app [--model PATH] [--min-detections N] FILE
//       decodes FILE (a video or a still image) with uridecodebin:
//       uridecodebin ! videoconvert ! ssddetect ! ssdtrack ! fakesink
//   ssd-example-app [--model PATH] [--min-detections N] --pipeline "videotestsrc ! ssddetect ! fakesink"
//       any gst-launch description with an ssddetect in it (with several: the one named
//       `detect`)
//
// The probe sits on the source pad of the ssdtrack behind the ssddetect when there is one (the tracker adds
// the `object_id` structure, printed as `#ID`), else on the ssddetect's. Ctrl-C (SIGINT) sends
// EOS, so that the pipeline ends as at the end of the stream (a muxer finishes its file); a
// second one stops at once. Run from the build tree with GST_PLUGIN_PATH=<build>/gst-plugin.
// Exit status: 0 on success, 1 on a pipeline error, 2 when fewer than --min-detections
// detections were seen.
#include <algorithm>
#include <csignal>
#include <cstdio>
#include <string>

#include <glib-unix.h>
#include <gst/gst.h>
#include <gst/video/video.h>

#include "gst-ssd/ssdmeta.h"   // installed with the plugin; pkg-config gst-ssd

namespace {

struct App {
  GMainLoop* loop = nullptr;
  GstElement* pipeline = nullptr;
  bool interrupted = false;
  guint64 frames = 0;
  guint64 detections = 0;
  bool error = false;
};

// Called for every buffer leaving ssdtrack (or ssddetect): the region-of-interest metas are the
// detections.
GstPadProbeReturn on_buffer(GstPad*, GstPadProbeInfo* info, gpointer user_data) {
  auto* app = static_cast<App*>(user_data);
  GstBuffer* buffer = GST_PAD_PROBE_INFO_BUFFER(info);
  if (!buffer) return GST_PAD_PROBE_OK;
  const double t = GST_BUFFER_PTS_IS_VALID(buffer) ? GST_BUFFER_PTS(buffer) / double(GST_SECOND) : -1.0;
  std::printf("frame %" G_GUINT64_FORMAT " (t=%.3f s):", app->frames++, t);
  gpointer state = nullptr;
  GstMeta* meta;
  // A box repeated from its detector's last analysed frame (interval=N) is `carried`: said once
  // for a frame whose boxes all are, else after each that is (a cascade: another ssddetect
  // analysed this frame).
  int n = 0, carried = 0;
  for (gpointer it = nullptr; (meta = gst_buffer_iterate_meta_filtered(buffer, &it, GST_VIDEO_REGION_OF_INTEREST_META_API_TYPE));) {
    GstSsdDetection d;
    gst_ssd_detection_read(reinterpret_cast<GstVideoRegionOfInterestMeta*>(meta), &d);
    n++;
    carried += d.carried ? 1 : 0;
  }
  const bool all_carried = n > 0 && carried == n;
  n = 0;
  while ((meta = gst_buffer_iterate_meta_filtered(buffer, &state, GST_VIDEO_REGION_OF_INTEREST_META_API_TYPE))) {
    auto* roi = reinterpret_cast<GstVideoRegionOfInterestMeta*>(meta);
    GstSsdDetection d;
    gst_ssd_detection_read(roi, &d);
    char id[24] = "";
    if (d.object_id >= 0) std::snprintf(id, sizeof id, " #%d", d.object_id);
    // Regions of other producers (or ssddetect's after videoscale, which drops the `detection`
    // structure) have no confidence: "?".
    char conf[16] = "?";
    if (d.confidence >= 0) std::snprintf(conf, sizeof conf, "%.2f", d.confidence);
    std::printf("%s %s%s %s [x=%u y=%u w=%u h=%u]%s", n ? "," : "", d.label ? d.label : "?", id, conf, roi->x, roi->y,
                roi->w, roi->h, d.carried && !all_carried ? " (carried)" : "");
    n++;
  }
  std::printf("%s%s\n", n ? "" : " nothing", all_carried ? " (carried from the last analysed frame)" : "");
  std::fflush(stdout);
  app->detections += n;
  return GST_PAD_PROBE_OK;
}

gboolean on_message(GstBus*, GstMessage* msg, gpointer user_data) {
  auto* app = static_cast<App*>(user_data);
  switch (GST_MESSAGE_TYPE(msg)) {
    case GST_MESSAGE_ERROR: {
      GError* err = nullptr;
      gchar* debug = nullptr;
      gst_message_parse_error(msg, &err, &debug);
      std::fprintf(stderr, "error from %s: %s\n%s\n", GST_OBJECT_NAME(msg->src), err->message, debug ? debug : "");
      g_clear_error(&err);
      g_free(debug);
      app->error = true;
      g_main_loop_quit(app->loop);
      break;
    }
    case GST_MESSAGE_EOS:
      g_main_loop_quit(app->loop);
      break;
    default:
      break;
  }
  return TRUE;
}

// The first element of the pipeline made by `factory`, or nullptr (a new reference).
GstElement* find_by_factory(GstElement* pipeline, const char* factory) {
  GstIterator* it = gst_bin_iterate_recurse(GST_BIN(pipeline));
  GValue item = G_VALUE_INIT;
  GstElement* found = nullptr;
  while (!found && gst_iterator_next(it, &item) == GST_ITERATOR_OK) {
    auto* e = GST_ELEMENT(g_value_get_object(&item));
    GstElementFactory* f = gst_element_get_factory(e);
    if (f && g_str_equal(GST_OBJECT_NAME(f), factory)) found = GST_ELEMENT(gst_object_ref(e));
    g_value_reset(&item);
  }
  g_value_unset(&item);
  gst_iterator_free(it);
  return found;
}

// The ssdtrack downstream of `detector` (following each element's only source pad), or nullptr
// (a new reference): in a pipeline of several streams, the tracker of this detector's stream.
GstElement* tracker_after(GstElement* detector) {
  GstPad* pad = gst_element_get_static_pad(detector, "src");
  for (int hops = 0; pad && hops < 64; ++hops) {
    GstPad* peer = gst_pad_get_peer(pad);
    gst_object_unref(pad);
    pad = nullptr;
    if (!peer) break;
    GstElement* next = gst_pad_get_parent_element(peer);
    gst_object_unref(peer);
    if (!next) break;
    GstElementFactory* f = gst_element_get_factory(next);
    if (f && g_str_equal(GST_OBJECT_NAME(f), "ssdtrack")) return next;
    if (next->numsrcpads == 1) pad = gst_element_get_static_pad(next, GST_PAD_NAME(next->srcpads->data));
    gst_object_unref(next);
  }
  if (pad) gst_object_unref(pad);
  return nullptr;
}

// Ctrl-C: EOS, so that the pipeline ends as at the end of its stream; a second one quits.
gboolean on_sigint(gpointer user_data) {
  auto* app = static_cast<App*>(user_data);
  if (app->interrupted) {
    g_main_loop_quit(app->loop);
  } else {
    app->interrupted = true;
    std::fprintf(stderr, "interrupted: sending EOS (Ctrl-C again to stop at once)\n");
    gst_element_send_event(app->pipeline, gst_event_new_eos());
  }
  return G_SOURCE_CONTINUE;
}

GstElement* find_detector(GstElement* pipeline) {
  if (!GST_IS_BIN(pipeline)) return nullptr;
  // The one named "detect" when several are there (as read_detections.py takes it).
  if (GstElement* named = gst_bin_get_by_name(GST_BIN(pipeline), "detect")) {
    GstElementFactory* f = gst_element_get_factory(named);
    if (f && g_str_equal(GST_OBJECT_NAME(f), "ssddetect")) return named;
    gst_object_unref(named);   // another element of that name: look for an ssddetect
  }
  return find_by_factory(pipeline, "ssddetect");
}

}  // namespace

int main(int argc, char** argv) {
  gchar* model = nullptr;
  gchar* description = nullptr;
  gint min_detections = 0;
  GOptionEntry entries[] = {
      {"model", 'm', 0, G_OPTION_ARG_FILENAME, &model, "Weights file (default: the shipped model)", "PATH"},
      // (FILENAME: the bytes as given. STRING converts from the locale's charset, which is ASCII
      // in a program that does not call setlocale(): a description naming "Prüfung.mp4" was refused.)
      {"pipeline", 'p', 0, G_OPTION_ARG_FILENAME, &description, "gst-launch description containing ssddetect", "DESC"},
      {"min-detections", 0, 0, G_OPTION_ARG_INT, &min_detections, "Fail (exit 2) below this many detections", "N"},
      {nullptr, 0, 0, G_OPTION_ARG_NONE, nullptr, nullptr, nullptr},
  };
  GOptionContext* ctx = g_option_context_new("[FILE] - print the objects ssddetect finds");
  g_option_context_add_main_entries(ctx, entries, nullptr);
  g_option_context_add_group(ctx, gst_init_get_option_group());
  GError* err = nullptr;
  if (!g_option_context_parse(ctx, &argc, &argv, &err)) {
    std::fprintf(stderr, "%s\n", err->message);
    return 1;
  }
  g_option_context_free(ctx);

  const char* usage = "usage: %s [--model PATH] [--min-detections N] FILE | --pipeline DESC\n";
  // An empty model path (an unset variable in a script) is an error, not the shipped model; a
  // FILE beside --pipeline is one (it was ignored).
  if (model && !*model) {
    std::fprintf(stderr, "--model: an empty path\n");
    return 1;
  }
  std::string launch;
  if (description && argc == 1) {
    launch = description;
  } else if (!description && argc == 2) {
    gchar* uri = gst_filename_to_uri(argv[1], &err);
    if (!uri) {
      std::fprintf(stderr, "%s\n", err->message);
      return 1;
    }
    launch = std::string("uridecodebin uri=\"") + uri + "\" ! videoconvert ! ssddetect ! ssdtrack ! fakesink";
    g_free(uri);
  } else {
    std::fprintf(stderr, usage, argv[0]);
    return 1;
  }

  // A recoverable error (e.g. a misspelt property) still returns a pipeline, without it.
  GstElement* pipeline = gst_parse_launch(launch.c_str(), &err);
  if (!pipeline || err) {
    std::fprintf(stderr, "could not build the pipeline: %s\n", err ? err->message : "(no reason given)");
    if (pipeline) gst_object_unref(pipeline);
    return 1;
  }
  GstElement* detector = find_detector(pipeline);
  if (!detector) {
    std::fprintf(stderr, "the pipeline has no ssddetect element (is GST_PLUGIN_PATH set?)\n");
    gst_object_unref(pipeline);
    return 1;
  }
  if (model) g_object_set(detector, "model", model, nullptr);

  App app;
  app.loop = g_main_loop_new(nullptr, FALSE);
  app.pipeline = pipeline;
  // Read behind the tracker when there is one: its regions carry the tracking ids.
  GstElement* tracker = tracker_after(detector);
  GstPad* src = gst_element_get_static_pad(tracker ? tracker : detector, "src");
  gst_pad_add_probe(src, GST_PAD_PROBE_TYPE_BUFFER, on_buffer, &app, nullptr);
  gst_object_unref(src);
  if (tracker) gst_object_unref(tracker);
  GstBus* bus = gst_element_get_bus(pipeline);
  gst_bus_add_watch(bus, on_message, &app);
  const guint sigint = g_unix_signal_add(SIGINT, on_sigint, &app);

  if (gst_element_set_state(pipeline, GST_STATE_PLAYING) == GST_STATE_CHANGE_FAILURE) {
    // The reason (e.g. an unreadable model) is in the error message on the bus.
    GstMessage* msg = gst_bus_pop_filtered(bus, GST_MESSAGE_ERROR);
    if (msg) {
      on_message(bus, msg, &app);
      gst_message_unref(msg);
    }
    app.error = true;
  } else {
    g_main_loop_run(app.loop);
  }
  g_source_remove(sigint);
  gst_element_set_state(pipeline, GST_STATE_NULL);
  std::printf("%" G_GUINT64_FORMAT " frames, %" G_GUINT64_FORMAT " detections\n", app.frames, app.detections);

  gst_bus_remove_watch(bus);
  gst_object_unref(bus);
  gst_object_unref(detector);
  gst_object_unref(pipeline);
  g_main_loop_unref(app.loop);
  g_free(model);
  g_free(description);
  if (app.error) return 1;
  return app.detections < static_cast<guint64>(std::max(0, min_detections)) ? 2 : 0;
}
