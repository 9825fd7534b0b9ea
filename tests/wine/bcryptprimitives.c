/*
 * A stand-in for Windows' bcryptprimitives.dll, for running the agent
 * under Wine 8 in tests only; never shipped.
 *
 * Rust's standard library (1.78 and later) takes its random bytes from
 * ProcessPrng in bcryptprimitives.dll, which Windows 10 and 11 have and
 * Wine 8 does not: without this file beside the .exe, the program does not
 * even load there. It fills the buffer from advapi32's RtlGenRandom
 * (SystemFunction036), whose length argument is 32-bit, hence the chunks.
 *
 * Built by tests/tests/windows_wine.rs:
 *   x86_64-w64-mingw32-gcc -shared -O2 -o bcryptprimitives.dll \
 *       bcryptprimitives.c bcryptprimitives.def -ladvapi32
 */
#include <windows.h>

BOOLEAN WINAPI SystemFunction036(PVOID buffer, ULONG length);

BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T len)
{
    while (len > 0) {
        ULONG chunk = len > 0x40000000 ? 0x40000000 : (ULONG)len;
        if (!SystemFunction036(data, chunk))
            return FALSE;
        data += chunk;
        len -= chunk;
    }
    return TRUE;
}
