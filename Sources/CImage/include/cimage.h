#ifndef CIMAGE_H
#define CIMAGE_H
#include <stddef.h>

/// An image decoded to 8-bit RGB, row by row (alpha dropped, grey and palettes expanded).
typedef struct {
    int width;
    int height;
    unsigned char *rgb;
    char error[200];
} cimage_result;

enum { CIMAGE_OK = 0, CIMAGE_UNKNOWN = 1, CIMAGE_CORRUPT = 2, CIMAGE_TOO_LARGE = 3 };

/// Decodes PNG or JPEG bytes. An image of more than `max_pixels` pixels (or a side over
/// 65,535) is refused from its header, before any pixel buffer is allocated. Errors are
/// returned, never raised: libjpeg's and libpng's long jumps stay inside this file.
int cimage_decode(const unsigned char *bytes, size_t length, long long max_pixels, cimage_result *out);
void cimage_free(cimage_result *result);

#endif
