/* SPDX-License-Identifier: GPL-2.0 */
/* Shared between the launcher, the preload library and entry.S. */
#ifndef FXRUN_H
#define FXRUN_H

#include <stdint.h>

/* The environment the launcher passes to the library (and the library
 * passes on through execve). */
#define FX_ENV_OPTS "FLEXSC_RUN_OPTS"
#define FX_ENV_LIB "FLEXSC_RUN_LIB"
#define FX_LIB_NAME "libflexsc-run.so"

/*
 * The program's registers as entry.S pushes them (rflags first, so at the
 * highest address). A trampoline call's return address lies 120 bytes
 * above the end of the struct (the rest of the red zone is stepped over).
 */
struct fx_regs {
	uint64_t r15, r14, r13, r12, r11, r10, r9, r8;
	uint64_t rbp, rdi, rsi, rdx, rcx, rbx, rax, rflags;
};

#define FX_TRAMP_GAP 120

#endif
