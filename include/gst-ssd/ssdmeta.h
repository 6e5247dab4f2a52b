/* gst-ssd: the metadata its elements attach to video buffers, for applications.
 *
 * ssddetect adds one GstVideoRegionOfInterestMeta per detection (pixels of the caps' frame,
 * clipped; roi_type = the label's quark; id unique in the frame) with a parameter structure
 * named GST_SSD_DETECTION_STRUCTURE (DL Streamer's convention):
 *   label_id (int), label (string), confidence (double, 0-1),
 *   x_min, y_min, x_max, y_max (double, the box normalised to the frame),
 *   carried (boolean: TRUE on a frame `interval` skipped, whose boxes are the last analysed
 *   frame's, repeated).
 * ssdtrack adds a structure named GST_SSD_OBJECT_ID_STRUCTURE with the int `id` of the object
 * (as DL Streamer's gvatrack writes it).
 *
 * Header only, C99 (or later) or C++; needs gstreamer-video-1.0 (pkg-config gst-ssd brings it
 * in). Read the regions where they leave the elements: GStreamer's videoconvert and videoscale,
 * when they convert, drop the structures; videocrop and a videoflip that flips drop the regions
 * (README.md).
 */
#ifndef GST_SSD_SSDMETA_H
#define GST_SSD_SSDMETA_H

#include <math.h>

#include <gst/video/video.h>

G_BEGIN_DECLS

#define GST_SSD_DETECTION_STRUCTURE "detection"
#define GST_SSD_OBJECT_ID_STRUCTURE "object_id"

/* One region's detection as the structures give it; fields a region lacks (another producer's,
 * or one whose structures a converter dropped) keep the values documented here. */
typedef struct {
  const gchar *label;   /* the structure's label, else the roi_type's; owned by the meta or
                         * the quark table (valid while the buffer is) */
  gint label_id;        /* -1 when not given */
  gdouble confidence;   /* -1 when not given */
  gint object_id;       /* ssdtrack's id, -1 when untracked */
  gboolean carried;     /* FALSE when not given */
  gboolean has_normalized;                 /* FALSE: no finite normalised box given */
  gdouble x_min, y_min, x_max, y_max;      /* normalised box, clamped to [0, 1] */
} GstSsdDetection;

/* A structure's double field (a float one too); FALSE when it has none. */
static inline gboolean
gst_ssd_structure_get_double (const GstStructure * s, const gchar * field, gdouble * out)
{
  const GValue *v = gst_structure_get_value (s, field);
  if (v && G_VALUE_HOLDS_DOUBLE (v)) {
    *out = g_value_get_double (v);
    return TRUE;
  }
  if (v && G_VALUE_HOLDS_FLOAT (v)) {
    *out = g_value_get_float (v);
    return TRUE;
  }
  return FALSE;
}

/* Reads the detection of a region of interest into `out`. */
static inline void
gst_ssd_detection_read (GstVideoRegionOfInterestMeta * roi, GstSsdDetection * out)
{
  const GstStructure *s;
  gdouble x0, y0, x1, y1;
  out->label = g_quark_to_string (roi->roi_type);
  out->label_id = -1;
  out->confidence = -1;
  out->object_id = -1;
  out->carried = FALSE;
  out->has_normalized = FALSE;
  out->x_min = out->y_min = out->x_max = out->y_max = 0;
  s = gst_video_region_of_interest_meta_get_param (roi, GST_SSD_DETECTION_STRUCTURE);
  if (s) {
    const gchar *label = gst_structure_get_string (s, "label");
    gboolean carried = FALSE;
    if (label)
      out->label = label;
    gst_structure_get_int (s, "label_id", &out->label_id);
    gst_ssd_structure_get_double (s, "confidence", &out->confidence);
    if (gst_structure_get_boolean (s, "carried", &carried))
      out->carried = carried;
    /* (Another producer's NaN or infinity: no normalised box.) */
    if (gst_ssd_structure_get_double (s, "x_min", &x0) && gst_ssd_structure_get_double (s, "y_min", &y0)
        && gst_ssd_structure_get_double (s, "x_max", &x1) && gst_ssd_structure_get_double (s, "y_max", &y1)
        && isfinite (x0) && isfinite (y0) && isfinite (x1) && isfinite (y1)) {
      out->has_normalized = TRUE;
      out->x_min = CLAMP (x0, 0.0, 1.0);
      out->y_min = CLAMP (y0, 0.0, 1.0);
      out->x_max = CLAMP (x1, out->x_min, 1.0);
      out->y_max = CLAMP (y1, out->y_min, 1.0);
    }
  }
  s = gst_video_region_of_interest_meta_get_param (roi, GST_SSD_OBJECT_ID_STRUCTURE);
  if (s)
    gst_structure_get_int (s, "id", &out->object_id);
}

G_END_DECLS

#endif /* GST_SSD_SSDMETA_H */
