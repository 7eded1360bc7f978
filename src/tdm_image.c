/* tdm_image.c -- what the first bytes of a file say it is (tdm/image.h). */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "tdm/image.h"

const char *tdm_image_type(const void *data, size_t len) {
  const unsigned char *b = data;
  if (len >= 3 && b[0] == 0xFF && b[1] == 0xD8 && b[2] == 0xFF)
    return "jpeg";
  if (len >= 8 && memcmp(b, "\x89PNG\r\n\x1a\n", 8) == 0) return "png";
  if (len >= 12 && memcmp(b, "RIFF", 4) == 0 && memcmp(b + 8, "WEBP", 4) == 0)
    return "webp";
  return NULL;
}

const char *tdm_image_content_type(const char *type) {
  if (!type) return NULL;
  if (strcmp(type, "jpeg") == 0) return "image/jpeg";
  if (strcmp(type, "png") == 0) return "image/png";
  if (strcmp(type, "webp") == 0) return "image/webp";
  return NULL;
}

int tdm_image_sniff(const char *path, const char **type, tdm_error *err) {
  unsigned char head[12];
  size_t got = 0;
  int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
  *type = NULL;
  if (fd < 0) return tdm_error_errno(err, errno, "read %s", path);
  while (got < sizeof head) {
    ssize_t r = read(fd, head + got, sizeof head - got);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) {
      int saved = errno;
      close(fd);
      return tdm_error_errno(err, saved, "read %s", path);
    }
    if (r == 0) break;
    got += (size_t)r;
  }
  close(fd);
  if (got == 0)
    return tdm_error_set(err, "EBADIMAGE", "%s is empty (0 bytes), not an "
                         "image", path);
  *type = tdm_image_type(head, got);
  if (!*type)
    return tdm_error_set(err, "EBADIMAGE", "%s is not a JPEG, PNG or WebP "
                         "image (its first bytes say otherwise)", path);
  return TDM_OK;
}
