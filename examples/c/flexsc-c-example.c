// SPDX-License-Identifier: MIT OR Apache-2.0
/*
 * FlexSC from C with libflexsc: 16 writes to stdout in one batch.
 *
 *   cc -static $(pkg-config --static --cflags --libs libflexsc) \
 *      -o flexsc-c-example flexsc-c-example.c
 *
 * flexsc_queue_init() checks /sys/kernel/flexsc/abi_version, maps the
 * region and registers it (with the ring extension where the kernel has
 * it); flexsc_submit() stores the batch, fences once and wakes the
 * systhreads only if they asked for it; each completion comes back with
 * the tag set on its entry.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <libflexsc.h>

#define NENTRIES 16

int main(void)
{
	static char lines[NENTRIES][32];
	struct __kernel_timespec timeout = { .tv_sec = 10 };
	struct flexsc_sysentry *e;
	struct flexsc_queue q;
	int ret, ok = 0;

	ret = flexsc_queue_init(NENTRIES, &q, 0);
	if (ret == -ENOSYS) {
		fprintf(stderr, "no FlexSC ABI %d in this kernel\n", FLEXSC_ABI_VERSION);
		return 1;
	}
	if (ret < 0) {
		fprintf(stderr, "flexsc_queue_init: %s\n", strerror(-ret));
		return 1;
	}
	/* __NR_flexsc_* come from the kernel's <asm/unistd_64.h>. */
	printf("registered: %u entries (%s; flexsc_register is system call %d)\n",
	       flexsc_queue_entries(&q),
	       flexsc_queue_features(&q) & FLEXSC_FEAT_RING ? "ring" : "ABI 1",
	       __NR_flexsc_register);
	fflush(stdout);

	for (int i = 0; i < NENTRIES; i++) {
		int n = snprintf(lines[i], sizeof(lines[i]), "write %2d via a systhread\n", i);

		e = flexsc_get_entry(&q);
		flexsc_prep_write(e, STDOUT_FILENO, lines[i], (size_t)n);
		flexsc_set_data(&q, e, lines[i]);
	}
	flexsc_submit(&q);

	for (int done = 0; done < NENTRIES; done++) {
		const char *line;

		ret = flexsc_wait_cqe_timeout(&q, &e, &timeout);
		if (ret < 0) {
			fprintf(stderr, "flexsc_wait_cqe: %s\n", strerror(-ret));
			break;
		}
		line = flexsc_get_data(&q, e);
		if (e->ret == (__s64)strlen(line))
			ok++;
		else
			printf("entry %u: %lld\n", flexsc_entry_index(&q, e), (long long)e->ret);
		flexsc_cqe_seen(&q, e);
	}

	ret = flexsc_queue_exit(&q);
	if (ret < 0) {
		fprintf(stderr, "flexsc_queue_exit: %s\n", strerror(-ret));
		return 1;
	}
	printf("c example: %d of %d writes ok\n", ok, NENTRIES);
	return ok == NENTRIES ? 0 : 1;
}
