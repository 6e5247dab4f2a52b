// The `ssd` plugin: ssddetect (SSD object detector), ssdtrack (tracking ids), ssdoverlay (draws
// regions of interest) and ssdexport (writes them as JSON Lines).
#include <string>

#include <gst/gst.h>

#include "blas_check.h"
#include "gstssddetect.h"
#include "gstssdexport.h"
#include "gstssdoverlay.h"
#include "gstssdtrack.h"
#include "pinned_pool.h"
#include "unwinder_check.h"

#ifndef PACKAGE
#define PACKAGE "gst-ssd"
#endif
#ifndef PACKAGE_ORIGIN
#define PACKAGE_ORIGIN "gst-ssd"
#endif
#ifndef PACKAGE_VERSION
#define PACKAGE_VERSION "0.1.0"
#endif

static gboolean plugin_init(GstPlugin* plugin) {
  gboolean ret = FALSE;
  gstssd::host_allocator();   // registers "SsdHostMemory" (page-locked frame memory)
  // OpenBLAS on a CPU newer than itself: its fast kernels, chosen while no element runs yet.
  const std::string kernels = ssd::select_openblas_kernels();
  if (!kernels.empty()) GST_INFO("%s", kernels.c_str());
  // Loaded into a process whose C++ exceptions cannot be caught (see unwinder_check.h): said on
  // stderr, as the first error in ssddetect would abort the process before a bus message was read.
  if (const std::string why = gstssd::mixed_unwinders(); !why.empty()) {
    GST_WARNING("%s", why.c_str());
    g_printerr("gst-ssd: warning: %s\n", why.c_str());
  }
  ret |= GST_ELEMENT_REGISTER(ssddetect, plugin);
  ret |= GST_ELEMENT_REGISTER(ssdtrack, plugin);
  ret |= GST_ELEMENT_REGISTER(ssdoverlay, plugin);
  ret |= GST_ELEMENT_REGISTER(ssdexport, plugin);
  return ret;
}

GST_PLUGIN_DEFINE(GST_VERSION_MAJOR, GST_VERSION_MINOR, ssd,
                  "SSD object detection: detector, tracker, overlay and JSON Lines export", plugin_init,
                  PACKAGE_VERSION, "MIT/X11", PACKAGE, PACKAGE_ORIGIN)
