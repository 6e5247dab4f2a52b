#include "pinned_pool.h"

#include <cstring>
#include <exception>
#include <memory>
#include <string>

#include <gst/video/video.h>

#include "detector.h"
#include "host_buffer.h"

GST_DEBUG_CATEGORY_STATIC(gst_ssd_pinned_debug);
#define GST_CAT_DEFAULT gst_ssd_pinned_debug

namespace {

// A memory of the allocator: a whole block, or a share of one (then `block` is null and the
// GstMemory's parent keeps the block's memory alive).
struct PinnedMemory {
  GstMemory mem;
  ssd::HostBuffer* block;
  guint8* data;   // the aligned start of the block's memory
};

struct SsdHostAllocator {
  GstAllocator parent;
};
struct SsdHostAllocatorClass {
  GstAllocatorClass parent_class;
};

GType ssd_host_allocator_get_type();
G_DEFINE_TYPE(SsdHostAllocator, ssd_host_allocator, GST_TYPE_ALLOCATOR)

GstMemory* allocator_alloc(GstAllocator* allocator, gsize size, GstAllocationParams* params) {
  static const bool cuda = ssd::cuda_available();
  const gsize align = params->align | gst_memory_alignment;   // a mask, e.g. 15
  gsize maxsize = size + params->prefix + params->padding;
  std::unique_ptr<ssd::HostBuffer> block;
  try {
    // Page-locked memory when there is a CUDA device; where the driver has none left to give,
    // ordinary memory, whose frames are staged before their upload, keeps the stream going.
    std::string why_not;
    block = cuda ? ssd::HostBuffer::pinned_if_possible(maxsize + align, &why_not)
                 : std::make_unique<ssd::HostBuffer>(maxsize + align, false);
    if (!why_not.empty())
      GST_WARNING("%" G_GSIZE_FORMAT " bytes of ordinary memory in place of page-locked memory: %s", maxsize,
                  why_not.c_str());
  } catch (const std::exception& e) {
    GST_WARNING("could not allocate %" G_GSIZE_FORMAT " bytes of host memory: %s", maxsize, e.what());
    return nullptr;
  }
  guint8* data = block->data();
  if (const gsize misalign = reinterpret_cast<guintptr>(data) & align) data += align + 1 - misalign;
  auto* m = g_new0(PinnedMemory, 1);
  gst_memory_init(GST_MEMORY_CAST(m), params->flags, allocator, nullptr, maxsize, align, params->prefix, size);
  m->block = block.release();
  m->data = data;
  if (params->prefix && (params->flags & GST_MEMORY_FLAG_ZERO_PREFIXED)) std::memset(data, 0, params->prefix);
  if (params->padding && (params->flags & GST_MEMORY_FLAG_ZERO_PADDED))
    std::memset(data + params->prefix + size, 0, params->padding);
  return GST_MEMORY_CAST(m);
}

void allocator_free(GstAllocator*, GstMemory* mem) {
  auto* m = reinterpret_cast<PinnedMemory*>(mem);
  delete m->block;
  g_free(m);
}

gpointer memory_map(GstMemory* mem, gsize, GstMapFlags) { return reinterpret_cast<PinnedMemory*>(mem)->data; }

void memory_unmap(GstMemory*) {}

GstMemory* memory_share(GstMemory* mem, gssize offset, gssize size) {
  auto* m = reinterpret_cast<PinnedMemory*>(mem);
  GstMemory* parent = mem->parent ? mem->parent : mem;
  if (size == -1) size = static_cast<gssize>(mem->size) - offset;
  auto* sub = g_new0(PinnedMemory, 1);
  // Shares are read-only, as the system allocator's are.
  gst_memory_init(GST_MEMORY_CAST(sub),
                  static_cast<GstMemoryFlags>(GST_MINI_OBJECT_FLAGS(parent) | GST_MINI_OBJECT_FLAG_LOCK_READONLY),
                  mem->allocator, parent, mem->maxsize, mem->align, mem->offset + offset, static_cast<gsize>(size));
  sub->block = nullptr;
  sub->data = m->data;
  return GST_MEMORY_CAST(sub);
}

// A copy goes to system memory: it is another element's (one that writes to a frame it shares
// makes one), not the upload's, and page-locked memory is kept by LibTorch's caching host
// allocator once taken, so copies would make it grow. (GstAllocator's fallback copies with the
// memory's own allocator.)
GstMemory* memory_copy(GstMemory* mem, gssize offset, gssize size) {
  GstMapInfo in;
  if (!gst_memory_map(mem, &in, GST_MAP_READ)) return nullptr;
  if (size == -1) size = static_cast<gssize>(in.size) > offset ? static_cast<gssize>(in.size) - offset : 0;
  GstAllocationParams params;
  gst_allocation_params_init(&params);
  params.align = mem->align;
  GstMemory* copy = gst_allocator_alloc(nullptr, static_cast<gsize>(size), &params);
  GstMapInfo out;
  if (!copy || !gst_memory_map(copy, &out, GST_MAP_WRITE)) {
    if (copy) gst_memory_unref(copy);
    gst_memory_unmap(mem, &in);
    return nullptr;
  }
  std::memcpy(out.data, in.data + offset, static_cast<size_t>(size));
  gst_memory_unmap(copy, &out);
  gst_memory_unmap(mem, &in);
  return copy;
}

gboolean memory_is_span(GstMemory* mem1, GstMemory* mem2, gsize* offset) {
  auto* m1 = reinterpret_cast<PinnedMemory*>(mem1);
  auto* m2 = reinterpret_cast<PinnedMemory*>(mem2);
  if (offset) *offset = mem1->offset - mem1->parent->offset;
  return m1->data + mem1->offset + mem1->size == m2->data + mem2->offset;
}

void ssd_host_allocator_class_init(SsdHostAllocatorClass* klass) {
  GstAllocatorClass* allocator_class = GST_ALLOCATOR_CLASS(klass);
  allocator_class->alloc = allocator_alloc;
  allocator_class->free = allocator_free;
  GST_DEBUG_CATEGORY_INIT(gst_ssd_pinned_debug, "ssdpinned", 0, "page-locked frame memory");
}

void ssd_host_allocator_init(SsdHostAllocator* self) {
  GstAllocator* allocator = GST_ALLOCATOR_CAST(self);
  allocator->mem_type = gstssd::kHostMemoryName;
  allocator->mem_map = memory_map;
  allocator->mem_unmap = memory_unmap;
  allocator->mem_share = memory_share;
  allocator->mem_is_span = memory_is_span;
  allocator->mem_copy = memory_copy;
}

// The root memory (holding the block) of a memory of the allocator.
const PinnedMemory* root(GstMemory* mem) {
  return reinterpret_cast<const PinnedMemory*>(mem->parent ? mem->parent : mem);
}

}  // namespace

namespace gstssd {

GstAllocator* host_allocator() {
  // Created once, registered (so gst_allocator_find() finds it) and kept for the life of the
  // process: memories refer to their allocator.
  static GstAllocator* const allocator = [] {
    auto* a = GST_ALLOCATOR_CAST(g_object_new(ssd_host_allocator_get_type(), nullptr));
    gst_object_ref_sink(a);
    gst_allocator_register(kHostMemoryName, GST_ALLOCATOR_CAST(gst_object_ref(a)));
    return a;
  }();
  return allocator;
}

GstBufferPool* new_host_buffer_pool(GstCaps* caps, guint min_buffers, guint max_buffers) {
  GstVideoInfo info;
  if (!caps || !gst_video_info_from_caps(&info, caps)) return nullptr;
  GstBufferPool* pool = gst_video_buffer_pool_new();
  GstStructure* config = gst_buffer_pool_get_config(pool);
  gst_buffer_pool_config_set_params(config, caps, static_cast<guint>(GST_VIDEO_INFO_SIZE(&info)), min_buffers,
                                    max_buffers);
  gst_buffer_pool_config_set_allocator(config, host_allocator(), nullptr);
  gst_buffer_pool_config_add_option(config, GST_BUFFER_POOL_OPTION_VIDEO_META);
  if (!gst_buffer_pool_set_config(pool, config)) {
    gst_object_unref(pool);
    return nullptr;
  }
  return pool;
}

bool is_pinned(GstBuffer* buffer) {
  const guint n = gst_buffer_n_memory(buffer);
  if (n == 0) return false;
  for (guint i = 0; i < n; ++i) {
    GstMemory* mem = gst_buffer_peek_memory(buffer, i);
    if (mem->allocator != host_allocator() || !root(mem)->block->pinned()) return false;
  }
  return true;
}

}  // namespace gstssd
