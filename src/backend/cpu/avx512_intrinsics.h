// <immintrin.h> for files with AVX-512 code. GCC 12 warns about its own _mm512_undefined_*
// placeholders inside the intrinsics headers; the warnings are switched off for the including
// file from here on (GCC only: clang has neither the false positive nor -Wmaybe-uninitialized).
#pragma once

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include <immintrin.h>
