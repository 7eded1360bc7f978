/*
 * tdm/image.h -- is this file really an image? The first bytes of a
 * training image say what it is; a zero-byte file, or bytes that are not
 * JPEG, PNG or WebP, are not training images whatever their name says
 * (the audit reports them, push does not upload them).
 */
#ifndef TDM_IMAGE_H
#define TDM_IMAGE_H

#include <stddef.h>
#include "error.h"

/* The type the first `len` bytes of `data` show: "jpeg", "png", "webp",
 * or NULL. */
const char *tdm_image_type(const void *data, size_t len);

/* The content type of a type tdm_image_type returned ("image/jpeg"...). */
const char *tdm_image_content_type(const char *type);

/* Sniff the file at `path` (opened without following a symlink): *type
 * as tdm_image_type. "EBADIMAGE" naming the file for an empty file or
 * bytes that are not JPEG, PNG or WebP; errno codes when it cannot be
 * read. */
int tdm_image_sniff(const char *path, const char **type, tdm_error *err);

#endif
