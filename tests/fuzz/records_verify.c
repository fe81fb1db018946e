/*
 * records_verify.c (fuzz) — bg_records_verify_streams over arbitrary bytes split into one to
 * three in-memory "files" (first byte: count; next two: split points), so the chain, link
 * across files, torn-line and JSON paths are all reached. Must never crash, leak or hang.
 * Single-threaded.
 */
#include "records.h"

#include <stdint.h>
#include <stdio.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static FILE *sink;
    if (!sink)
        sink = fopen("/dev/null", "w");
    if (size < 3)
        return 0;
    size_t nfiles = data[0] % 3 + 1;
    const uint8_t *p = data + 3;
    size_t n = size - 3;
    size_t cut[4] = {0, 0, 0, n};
    cut[1] = nfiles > 1 ? (size_t)data[1] * n / 255 : n;
    cut[2] = nfiles > 2 ? cut[1] + (size_t)data[2] * (n - cut[1]) / 255 : n;
    if (nfiles == 2)
        cut[2] = n;
    FILE *ins[3];
    const char *names[3] = {"a", "b", "c"};
    static char empty[1];
    size_t opened = 0;
    for (size_t i = 0; i < nfiles; i++) {
        size_t len = cut[i + 1] - cut[i];
        /* fmemopen rejects size 0; an empty file is a stream over a zero-length read. */
        ins[i] = len ? fmemopen((void *)(p + cut[i]), len, "rb") : fmemopen(empty, 1, "rb");
        if (!ins[i])
            break;
        if (!len)
            (void)fgetc(ins[i]);
        opened++;
    }
    if (opened == nfiles)
        bg_records_verify_streams(ins, names, nfiles, sink);
    for (size_t i = 0; i < opened; i++)
        fclose(ins[i]);
    return 0;
}
