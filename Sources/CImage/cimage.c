#include "cimage.h"
#include <stdio.h>  /* before jpeglib.h, which uses FILE */
#include <stdlib.h>
#include <string.h>
#include <setjmp.h>
#include <jpeglib.h>
#include <png.h>

static int too_large(long long w, long long h, long long max_pixels) {
    return w <= 0 || h <= 0 || w > 65535 || h > 65535 || w * h > max_pixels;
}

/* ---- JPEG (libjpeg-turbo) ---- */

struct jpeg_failure {
    struct jpeg_error_mgr mgr;
    jmp_buf jump;
    char *message;
    int warnings;
};

static void jpeg_fail(j_common_ptr cinfo) {
    struct jpeg_failure *f = (struct jpeg_failure *)cinfo->err;
    (*cinfo->err->format_message)(cinfo, f->message);
    longjmp(f->jump, 1);
}

/* A warning (level < 0) is a damaged file that libjpeg would pad with grey: counted, and the
   image is then refused as corrupt. */
static void jpeg_quiet(j_common_ptr cinfo, int level) {
    struct jpeg_failure *f = (struct jpeg_failure *)cinfo->err;
    if (level < 0 && f->warnings++ == 0) (*cinfo->err->format_message)(cinfo, f->message);
}

static int decode_jpeg(const unsigned char *bytes, size_t length, long long max_pixels, cimage_result *out) {
    struct jpeg_decompress_struct cinfo;
    struct jpeg_failure failure;
    unsigned char *volatile rgb = NULL;
    memset(&cinfo, 0, sizeof cinfo);
    cinfo.err = jpeg_std_error(&failure.mgr);
    failure.mgr.error_exit = jpeg_fail;
    failure.mgr.emit_message = jpeg_quiet;
    failure.message = out->error;
    failure.warnings = 0;
    if (setjmp(failure.jump)) {
        jpeg_destroy_decompress(&cinfo);
        free(rgb);
        return CIMAGE_CORRUPT;
    }
    jpeg_create_decompress(&cinfo);
    jpeg_mem_src(&cinfo, bytes, (unsigned long)length);
    jpeg_read_header(&cinfo, TRUE);
    if (too_large(cinfo.image_width, cinfo.image_height, max_pixels)) {
        snprintf(out->error, sizeof out->error, "%u x %u pixels", cinfo.image_width, cinfo.image_height);
        jpeg_destroy_decompress(&cinfo);
        return CIMAGE_TOO_LARGE;
    }
    cinfo.out_color_space = JCS_RGB;
    jpeg_start_decompress(&cinfo);
    if (cinfo.output_components != 3) {
        snprintf(out->error, sizeof out->error, "%d colour components", cinfo.output_components);
        jpeg_destroy_decompress(&cinfo);
        return CIMAGE_CORRUPT;
    }
    size_t stride = (size_t)cinfo.output_width * 3;
    rgb = malloc(stride * cinfo.output_height);
    if (!rgb) { jpeg_destroy_decompress(&cinfo); snprintf(out->error, sizeof out->error, "out of memory"); return CIMAGE_TOO_LARGE; }
    while (cinfo.output_scanline < cinfo.output_height) {
        JSAMPROW row = rgb + stride * cinfo.output_scanline;
        jpeg_read_scanlines(&cinfo, &row, 1);
    }
    jpeg_finish_decompress(&cinfo);
    if (failure.warnings > 0) {
        jpeg_destroy_decompress(&cinfo);
        free(rgb);
        return CIMAGE_CORRUPT;
    }
    out->width = (int)cinfo.output_width;
    out->height = (int)cinfo.output_height;
    out->rgb = rgb;
    jpeg_destroy_decompress(&cinfo);
    return CIMAGE_OK;
}

/* ---- PNG (libpng) ---- */

struct png_source { const unsigned char *bytes; size_t length, offset; };

static void png_read_memory(png_structp png, png_bytep data, png_size_t length) {
    struct png_source *s = (struct png_source *)png_get_io_ptr(png);
    if (s->offset + length > s->length) png_error(png, "the file ends early");
    memcpy(data, s->bytes + s->offset, length);
    s->offset += length;
}

static void png_fail(png_structp png, png_const_charp message) {
    cimage_result *out = (cimage_result *)png_get_error_ptr(png);
    snprintf(out->error, sizeof out->error, "%s", message);
    png_longjmp(png, 1);
}

static void png_quiet(png_structp png, png_const_charp message) { (void)png; (void)message; }

static int decode_png(const unsigned char *bytes, size_t length, long long max_pixels, cimage_result *out) {
    /* IHDR comes first: its size is refused before libpng reads any further. */
    if (length >= 24 && memcmp(bytes + 12, "IHDR", 4) == 0) {
        long long w = ((long long)bytes[16] << 24) | (bytes[17] << 16) | (bytes[18] << 8) | bytes[19];
        long long h = ((long long)bytes[20] << 24) | (bytes[21] << 16) | (bytes[22] << 8) | bytes[23];
        if (too_large(w, h, max_pixels)) {
            snprintf(out->error, sizeof out->error, "%lld x %lld pixels", w, h);
            return CIMAGE_TOO_LARGE;
        }
    }
    struct png_source source = { bytes, length, 0 };
    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, out, png_fail, png_quiet);
    if (!png) return CIMAGE_CORRUPT;
    png_infop info = png_create_info_struct(png);
    unsigned char *volatile rgb = NULL;
    png_bytep *volatile rows = NULL;
    if (!info || setjmp(png_jmpbuf(png))) {
        png_destroy_read_struct(&png, info ? &info : NULL, NULL);
        free(rgb);
        free(rows);
        return CIMAGE_CORRUPT;
    }
    png_set_read_fn(png, &source, png_read_memory);
    png_read_info(png, info);
    png_uint_32 w = png_get_image_width(png, info), h = png_get_image_height(png, info);
    if (too_large(w, h, max_pixels)) {
        snprintf(out->error, sizeof out->error, "%u x %u pixels", w, h);
        png_destroy_read_struct(&png, &info, NULL);
        return CIMAGE_TOO_LARGE;
    }
    png_set_expand(png);
    png_set_strip_16(png);
    png_set_gray_to_rgb(png);
    png_set_strip_alpha(png);
    png_set_interlace_handling(png);
    png_read_update_info(png, info);
    size_t stride = png_get_rowbytes(png, info);
    if (stride != (size_t)w * 3) png_error(png, "not 8-bit RGB after expansion");
    rgb = malloc(stride * h);
    rows = malloc(sizeof(png_bytep) * h);
    if (!rgb || !rows) png_error(png, "out of memory");
    for (png_uint_32 i = 0; i < h; i++) rows[i] = rgb + stride * i;
    png_read_image(png, rows);
    png_read_end(png, NULL);
    free(rows);
    out->width = (int)w;
    out->height = (int)h;
    out->rgb = rgb;
    png_destroy_read_struct(&png, &info, NULL);
    return CIMAGE_OK;
}

int cimage_decode(const unsigned char *bytes, size_t length, long long max_pixels, cimage_result *out) {
    memset(out, 0, sizeof *out);
    if (length >= 8 && memcmp(bytes, "\x89PNG\r\n\x1a\n", 8) == 0) return decode_png(bytes, length, max_pixels, out);
    if (length >= 3 && bytes[0] == 0xFF && bytes[1] == 0xD8 && bytes[2] == 0xFF) return decode_jpeg(bytes, length, max_pixels, out);
    return CIMAGE_UNKNOWN;
}

void cimage_free(cimage_result *result) {
    free(result->rgb);
    result->rgb = NULL;
}
