// The apps have no heap. newlib-nano's string printf (snprintf, behind the agent's JSON and
// the shell) refers to the allocator for asprintf's growing buffers, a path snprintf never
// takes; these definitions keep newlib's allocator out of the image and make any call fail
// instead of carving a heap out of RAM. scripts/check-device-symbols.sh fails an image that
// links newlib's allocator after all.
#include <cerrno>
#include <cstddef>

struct _reent;

// `used`: the references come from library members pulled in after link-time optimisation.
extern "C" __attribute__((used)) void* _malloc_r(_reent*, size_t) {
  errno = ENOMEM;
  return nullptr;
}
extern "C" __attribute__((used)) void* _realloc_r(_reent*, void*, size_t) {
  errno = ENOMEM;
  return nullptr;
}
extern "C" __attribute__((used)) void _free_r(_reent*, void*) {}
