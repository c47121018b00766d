// SPDX-License-Identifier: GPL-2.0
/*
 * Two guests, one ivshmem region, before af_ivshmem is loaded: bytes that
 * one guest writes into BAR2 are what the other reads, and BAR0 tells each
 * doorbell guest its own peer id.
 *
 * Both guests run this test at the same time. They meet in a mailbox in the
 * last page of the region, keyed by a token the runner draws for each run,
 * so that a stale region left by an earlier run cannot fake a pass.
 * Role "a" and role "b" come from the kernel command line.
 */
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>

#include "kselftest_harness.h"
#include "ivshm_test.h"

#define IVSHM_REG_IVPOSITION	0x08

struct mailbox {
	_Atomic uint64_t token[2];	/* written by role a / role b */
	_Atomic uint64_t echo[2];	/* echo[i]: the other role saw token[i] */
	_Atomic uint64_t ivposition[2];
};

FIXTURE(region) {
	void *shm;
	size_t shm_len;
	int role;		/* 0 = a, 1 = b */
	uint64_t token;
};

FIXTURE_SETUP(region)
{
	const char *role = ivshm_cmdline("role");

	ASSERT_NE(NULL, role);
	self->role = strcmp(role, "a") ? 1 : 0;
	self->token = ivshm_cmdline_ull("token", 0);
	ASSERT_NE(0, self->token);
	self->shm = ivshm_map_bar(2, &self->shm_len);
	ASSERT_NE(NULL, self->shm) {
		TH_LOG("cannot map BAR2: %s", strerror(errno));
	}
}

FIXTURE_TEARDOWN(region)
{
	if (self->shm)
		munmap(self->shm, self->shm_len);
}

static uint64_t my_token(uint64_t token, int role)
{
	return token * 2 + role;
}

/* Wait up to @ms for *@p == @want. */
static bool wait_eq(_Atomic uint64_t *p, uint64_t want, unsigned int ms)
{
	uint64_t deadline = ivshm_now_ms() + ms;

	while (atomic_load(p) != want) {
		if (ivshm_now_ms() > deadline)
			return false;
		ivshm_sleep_ms(2);
	}
	return true;
}

TEST_F(region, bar2_has_the_configured_size)
{
	ASSERT_EQ(ivshm_cmdline_ull("size", 0), self->shm_len);
}

TEST_F_TIMEOUT(region, bytes_cross_between_guests, 90)
{
	struct mailbox *mb = (void *)((char *)self->shm + self->shm_len - 4096);
	int me = self->role, peer = !self->role;
	uint64_t mine = my_token(self->token, me);
	uint64_t theirs = my_token(self->token, peer);
	char pattern[64];
	size_t off;

	atomic_store(&mb->token[me], mine);

	/* See the peer's token, echo it, and wait for our own echo. */
	ASSERT_TRUE(wait_eq(&mb->token[peer], theirs, 60000)) {
		TH_LOG("never saw the other guest's token");
	}
	atomic_store(&mb->echo[peer], theirs);
	ASSERT_TRUE(wait_eq(&mb->echo[me], mine, 60000)) {
		TH_LOG("the other guest never echoed our token");
	}

	/* A larger pattern, in this guest's half of the page before it. */
	snprintf(pattern, sizeof(pattern), "guest %c token %llu",
		 'a' + me, (unsigned long long)mine);
	off = self->shm_len - 8192 + me * 2048;
	memcpy((char *)self->shm + off, pattern, strlen(pattern) + 1);
	atomic_store(&mb->echo[me], mine + 2);
	ASSERT_TRUE(wait_eq(&mb->echo[peer], theirs + 2, 60000));
	snprintf(pattern, sizeof(pattern), "guest %c token %llu",
		 'a' + peer, (unsigned long long)theirs);
	off = self->shm_len - 8192 + peer * 2048;
	ASSERT_STREQ(pattern, (char *)self->shm + off);
}

TEST_F_TIMEOUT(region, doorbell_peers_have_distinct_ids, 90)
{
	struct mailbox *mb = (void *)((char *)self->shm + self->shm_len - 4096);
	int me = self->role, peer = !self->role;
	volatile uint32_t *regs;
	size_t regs_len;
	uint64_t id;

	if (strcmp(ivshm_cmdline("mode") ?: "", "doorbell"))
		SKIP(return, "ivshmem-plain has no peer ids");

	regs = ivshm_map_bar(0, &regs_len);
	ASSERT_NE(NULL, regs);
	id = regs[IVSHM_REG_IVPOSITION / 4];
	munmap((void *)regs, regs_len);
	ASSERT_GT(2, id);

	/* Published with a tag so a zeroed region does not look like id 0. */
	atomic_store(&mb->ivposition[me], (self->token << 16) | id);
	ASSERT_TRUE(wait_eq(&mb->ivposition[peer],
			    (self->token << 16) | !id, 60000)) {
		TH_LOG("other guest's id is not %d", (int)!id);
	}
}

TEST_HARNESS_MAIN
