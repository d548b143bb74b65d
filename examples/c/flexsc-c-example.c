// SPDX-License-Identifier: GPL-2.0
/*
 * FlexSC from C, the way a kernel person first tries it: raw syscall(2)
 * and the uapi header installed by `make headers_install`.
 *
 * Registers a region of 16 entries, submits a batch of 16 writes to
 * stdout, waits for them with flexsc_wait(), prints the results and
 * unregisters.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <linux/flexsc.h>

#define NR_FLEXSC_REGISTER 463
#define NR_FLEXSC_WAIT 464
#define NR_FLEXSC_EXIT 465
#define NENTRIES 16

static int abi_ok(void)
{
	FILE *f = fopen("/sys/kernel/flexsc/abi_version", "r");
	int v = 0;

	if (!f)
		return 0;
	if (fscanf(f, "%d", &v) != 1)
		v = 0;
	fclose(f);
	return v == FLEXSC_ABI_VERSION;
}

int main(void)
{
	/* Later kernels reuse 463+: never call them blindly. */
	if (!abi_ok()) {
		fprintf(stderr, "no FlexSC ABI %d in this kernel\n", FLEXSC_ABI_VERSION);
		return 1;
	}

	size_t len = sizeof(struct flexsc_hdr) + NENTRIES * sizeof(struct flexsc_sysentry);
	len = (len + 4095) & ~4095UL;
	void *region = mmap(NULL, len, PROT_READ | PROT_WRITE,
			    MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
	if (region == MAP_FAILED)
		return perror("mmap"), 1;
	struct flexsc_hdr *hdr = region;
	struct flexsc_sysentry *e = (struct flexsc_sysentry *)(hdr + 1);

	struct flexsc_params p = {
		.region = (unsigned long)region,
		.nentries = NENTRIES,
	};
	if (syscall(NR_FLEXSC_REGISTER, &p, sizeof(p)) != 0)
		return perror("flexsc_register"), 1;
	printf("registered: %u entries\n", hdr->nentries);
	fflush(stdout);

	static char lines[NENTRIES][32];
	for (int i = 0; i < NENTRIES; i++) {
		int n = snprintf(lines[i], sizeof(lines[i]), "write %2d via a systhread\n", i);

		e[i].nr = SYS_write;
		e[i].args[0] = STDOUT_FILENO;
		e[i].args[1] = (unsigned long)lines[i];
		e[i].args[2] = n;
		atomic_store_explicit((_Atomic __u32 *)&e[i].status, FLEXSC_SUBMITTED,
				      memory_order_release);
	}
	/* Full fence, then wake the systhreads only if they asked for it. */
	atomic_thread_fence(memory_order_seq_cst);
	if (atomic_load((_Atomic __u32 *)&hdr->flags) & FLEXSC_NEED_WAKEUP)
		syscall(NR_FLEXSC_WAIT, 0, NULL);

	struct timespec timeout = { .tv_sec = 10 };
	long done = syscall(NR_FLEXSC_WAIT, NENTRIES, &timeout);
	if (done < 0)
		return perror("flexsc_wait"), 1;

	int ok = 0;
	for (int i = 0; i < NENTRIES; i++) {
		if (atomic_load_explicit((_Atomic __u32 *)&e[i].status,
					 memory_order_acquire) != FLEXSC_DONE)
			continue;
		if (e[i].ret == (long)strlen(lines[i]))
			ok++;
		else
			printf("entry %d: %lld\n", i, (long long)e[i].ret);
		e[i].status = FLEXSC_FREE;
	}
	if (syscall(NR_FLEXSC_EXIT) != 0)
		return perror("flexsc_exit"), 1;
	printf("c example: %d of %d writes ok\n", ok, NENTRIES);
	return ok == NENTRIES ? 0 : 1;
}
