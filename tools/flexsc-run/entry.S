/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The machine code of libflexsc-run.so that executes `syscall` itself.
 *
 * Everything here lies in the section flexsc_allowed, the range that
 * Syscall User Dispatch lets through (prctl's offset and length): the
 * library's own system calls, its SIGSYS restorer, and the entry of the
 * trampoline that rewritten sites call. See fxrun.h for struct fx_regs,
 * whose layout the pushes below build.
 */

	.section flexsc_allowed,"ax",@progbits

/* long fx_sys6(long nr, long a1, long a2, long a3, long a4, long a5, long a6) */
	.globl	fx_sys6
	.hidden	fx_sys6
	.type	fx_sys6,@function
	.p2align 4
fx_sys6:
	.cfi_startproc
	movq	%rdi, %rax
	movq	%rsi, %rdi
	movq	%rdx, %rsi
	movq	%rcx, %rdx
	movq	%r8, %r10
	movq	%r9, %r8
	movq	8(%rsp), %r9
	syscall
	ret
	.cfi_endproc
	.size	fx_sys6, .-fx_sys6

/*
 * The SIGSYS handler's sa_restorer. Deliberately outside any FDE and
 * byte for byte `movq $15, %rax; syscall`: libgcc's unwinder recognises a
 * signal frame by exactly these bytes, so pthread cancellation and C++
 * exceptions unwind through a trapped call.
 */
	.globl	fx_restorer
	.hidden	fx_restorer
	.type	fx_restorer,@function
	.p2align 4
	nop
fx_restorer:
	movq	$15, %rax
	syscall
	ud2
	.size	fx_restorer, .-fx_restorer

/*
 * void fx_sigreturn_at(unsigned long rsp): the program's own rt_sigreturn,
 * trapped in its restorer: rt_sigreturn with the stack pointer the
 * program had, so the kernel finds the program's signal frame.
 */
	.globl	fx_sigreturn_at
	.hidden	fx_sigreturn_at
	.type	fx_sigreturn_at,@function
	.p2align 4
fx_sigreturn_at:
	movq	%rdi, %rsp
	movl	$15, %eax
	syscall
	ud2
	.size	fx_sigreturn_at, .-fx_sigreturn_at

/* Save and restore the registers as struct fx_regs (rflags highest). */
.macro SAVE_REGS
	pushfq
	.cfi_adjust_cfa_offset 8
	pushq	%rax
	.cfi_adjust_cfa_offset 8
	pushq	%rbx
	.cfi_adjust_cfa_offset 8
	.cfi_rel_offset rbx, 0
	pushq	%rcx
	.cfi_adjust_cfa_offset 8
	pushq	%rdx
	.cfi_adjust_cfa_offset 8
	pushq	%rsi
	.cfi_adjust_cfa_offset 8
	pushq	%rdi
	.cfi_adjust_cfa_offset 8
	pushq	%rbp
	.cfi_adjust_cfa_offset 8
	.cfi_rel_offset rbp, 0
	pushq	%r8
	.cfi_adjust_cfa_offset 8
	pushq	%r9
	.cfi_adjust_cfa_offset 8
	pushq	%r10
	.cfi_adjust_cfa_offset 8
	pushq	%r11
	.cfi_adjust_cfa_offset 8
	pushq	%r12
	.cfi_adjust_cfa_offset 8
	.cfi_rel_offset r12, 0
	pushq	%r13
	.cfi_adjust_cfa_offset 8
	.cfi_rel_offset r13, 0
	pushq	%r14
	.cfi_adjust_cfa_offset 8
	.cfi_rel_offset r14, 0
	pushq	%r15
	.cfi_adjust_cfa_offset 8
	.cfi_rel_offset r15, 0
.endm

.macro RESTORE_REGS
	.irp reg, r15, r14, r13, r12, r11, r10, r9, r8, rbp, rdi, rsi, rdx, rcx, rbx, rax
	popq	%\reg
	.cfi_adjust_cfa_offset -8
	.endr
	popfq
	.cfi_adjust_cfa_offset -8
.endm

/*
 * The trampoline's entry. A rewritten site (`call *%rax` in place of
 * `syscall`) lands in the nop sled at address %rax (the call number) and
 * the sled jumps here with %r11 scratch (a system call clobbers %rcx and
 * %r11). The call pushed its return address at -8(%rsp) of the program;
 * the rest of the red zone is stepped over. fx_tramp_dispatch() returns
 * 0 to return to the program with regs->rax as the result, or 1 to run
 * the call natively: then regs->r11 is the address of a thunk (see
 * fx_thunk()) entered with the program's registers and stack.
 */
	.globl	fx_tramp
	.hidden	fx_tramp
	.type	fx_tramp,@function
	.p2align 4
fx_tramp:
	.cfi_startproc
	cmpq	$15, %rax
	je	9f
	leaq	-120(%rsp), %rsp
	.cfi_adjust_cfa_offset 120
	SAVE_REGS
	movq	%rsp, %rbx
	.cfi_def_cfa_register rbx
	movq	%rsp, %rdi
	andq	$-16, %rsp
	cld
	call	fx_tramp_dispatch
	movq	%rbx, %rsp
	.cfi_def_cfa_register rsp
	testl	%eax, %eax
	jnz	5f
	.cfi_remember_state
	RESTORE_REGS
	leaq	120(%rsp), %rsp
	.cfi_adjust_cfa_offset -120
	ret
5:
	.cfi_restore_state
	RESTORE_REGS
	leaq	128(%rsp), %rsp
	jmp	*%r11
9:
	/* rt_sigreturn: the kernel finds the frame at the program's %rsp. */
	addq	$8, %rsp
	syscall
	ud2
	.cfi_endproc
	.size	fx_tramp, .-fx_tramp

/*
 * Called by a thunk in the child of a clone, fork or vfork run natively
 * (return value 0), with every register the program's and %r11d the call
 * number; the thunk has stepped over the red zone. fx_child_init() sets
 * the child up (Syscall User Dispatch for a new thread or process).
 */
	.globl	fx_child_entry
	.hidden	fx_child_entry
	.type	fx_child_entry,@function
	.p2align 4
fx_child_entry:
	.cfi_startproc
	SAVE_REGS
	movq	%rsp, %rbx
	.cfi_def_cfa_register rbx
	movq	%rsp, %rdi
	andq	$-16, %rsp
	cld
	call	fx_child_init
	movq	%rbx, %rsp
	.cfi_def_cfa_register rsp
	RESTORE_REGS
	ret
	.cfi_endproc
	.size	fx_child_entry, .-fx_child_entry

	/* Keep the last `syscall` strictly inside the section. */
	ud2
	ud2

	.section .note.GNU-stack,"",@progbits
