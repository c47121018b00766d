// SPDX-License-Identifier: GPL-2.0
/*
 * af_ivshmem bound to a real ivshmem PCI device in a guest: the device is
 * described as QEMU configured it, user space can no longer map the region,
 * and doorbells rung by one guest interrupt the other.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>

#include "kselftest_harness.h"
#include "ivshm_test.h"

static bool doorbell_mode(void)
{
	return !strcmp(ivshm_cmdline("mode") ?: "", "doorbell");
}

TEST(device_described)
{
	char val[64];

	ASSERT_EQ(0, ivshm_dev_attr("ivshm0", "info", "transport", val,
				    sizeof(val)));
	ASSERT_STREQ("pci", val);
	ASSERT_EQ(ivshm_cmdline_ull("size", 0),
		  ivshm_dev_attr_ll("ivshm0", "info", "region_size"));
	ASSERT_EQ(0, ivshm_dev_attr("ivshm0", "info", "mode", val,
				    sizeof(val)));
	ASSERT_STREQ(ivshm_cmdline("mode"), val);
	/* Protocol v1 layout of a 4 MiB region (Documentation/protocol.md). */
	ASSERT_EQ(1, ivshm_dev_attr_ll("ivshm0", "info", "protocol"));
	ASSERT_EQ(1008, ivshm_dev_attr_ll("ivshm0", "info", "data_blocks"));
	ASSERT_EQ(256, ivshm_dev_attr_ll("ivshm0", "info", "max_channels"));
	ASSERT_EQ(0, ivshm_dev_attr("ivshm0", "info", "region", val,
				    sizeof(val)));
	ASSERT_TRUE(!strcmp(val, "initialised") || !strcmp(val, "attached"));
	ASSERT_EQ(0, ivshm_dev_attr("ivshm0", "info", "own_id", val,
				    sizeof(val)));
	if (doorbell_mode()) {
		ASSERT_EQ(ivshm_cmdline_ull("vectors", 0),
			  ivshm_dev_attr_ll("ivshm0", "info", "vectors"));
		ASSERT_GT(2, ivshm_dev_attr_ll("ivshm0", "info", "own_id"));
	} else {
		/* No id from outside: the module took a free peer slot. */
		ASSERT_GT(2, ivshm_dev_attr_ll("ivshm0", "info", "own_id"));
		ASSERT_EQ(0, ivshm_dev_attr_ll("ivshm0", "info", "vectors"));
	}
}

TEST(region_not_mappable_by_user_space)
{
	size_t len;
	void *p;

	p = ivshm_map_bar(2, &len);
	if (p)
		munmap(p, len);
	ASSERT_EQ(NULL, p) {
		TH_LOG("BAR2 is mappable while af_ivshmem owns it");
	}
	p = ivshm_map_bar(0, &len);
	if (p)
		munmap(p, len);
	ASSERT_EQ(NULL, p);
}

TEST(plain_mode_cannot_ring)
{
	if (doorbell_mode())
		SKIP(return, "doorbell mode rings");
	ASSERT_EQ(-EOPNOTSUPP, ivshm_write_file(IVSHM_DEBUGFS "/ivshm0/ring",
						"0 0"));
}

/*
 * Each guest rings the other on @vector every 20 ms until it has itself
 * been rung at least once, then for 2 s more so that the other guest, which
 * may have loaded its module later, is sure to be rung as well. Rings sent
 * before the other side enabled MSI-X are lost, which is why they repeat.
 */
static void exchange_doorbells(struct __test_metadata *_metadata,
			       unsigned int vector)
{
	long long own = ivshm_dev_attr_ll("ivshm0", "info", "own_id");
	long long base = ivshm_doorbells("ivshm0", vector);
	long long irq_base, irqs;
	char irqname[32], cmd[32];
	uint64_t deadline, stop = 0;

	ASSERT_LE(0, own);
	ASSERT_LE(0, base);
	snprintf(irqname, sizeof(irqname), "ivshm0-%u", vector);
	irq_base = ivshm_proc_interrupts(irqname);
	ASSERT_LE(0, irq_base);
	snprintf(cmd, sizeof(cmd), "%d %u", !own, vector);

	deadline = ivshm_now_ms() + 60000;
	for (;;) {
		uint64_t now = ivshm_now_ms();

		ASSERT_EQ(0, ivshm_write_file(IVSHM_DEBUGFS "/ivshm0/ring",
					      cmd));
		if (!stop && ivshm_doorbells("ivshm0", vector) > base)
			stop = now + 2000;
		if (stop && now > stop)
			break;
		ASSERT_GT(deadline, now) {
			TH_LOG("no doorbell from peer %d on vector %u",
			       !own, vector);
		}
		ivshm_sleep_ms(20);
	}
	irqs = ivshm_proc_interrupts(irqname);
	ASSERT_LT(irq_base, irqs) {
		TH_LOG("/proc/interrupts does not count %s", irqname);
	}
}

TEST(doorbell_vector0_crosses)
{
	if (!doorbell_mode())
		SKIP(return, "ivshmem-plain has no doorbells");
	exchange_doorbells(_metadata, 0);
}

TEST(doorbell_vector1_crosses)
{
	if (!doorbell_mode())
		SKIP(return, "ivshmem-plain has no doorbells");
	exchange_doorbells(_metadata, 1);
}

TEST(unbind_and_rebind)
{
	const char *dev = ivshm_pci_device();
	const char *slot;
	char val[16];

	ASSERT_NE(NULL, dev);
	slot = strrchr(dev, '/') + 1;
	ASSERT_EQ(0, ivshm_write_file("/sys/bus/pci/drivers/af_ivshmem/unbind",
				      slot));
	ASSERT_EQ(-ENOENT, ivshm_dev_attr("ivshm0", "info", "mode", val,
					  sizeof(val)));
	ASSERT_EQ(0, ivshm_write_file("/sys/bus/pci/drivers/af_ivshmem/bind",
				      slot));
	ASSERT_EQ(0, ivshm_dev_attr("ivshm0", "info", "mode", val,
				    sizeof(val)));
	ASSERT_STREQ(ivshm_cmdline("mode"), val);
}

TEST_HARNESS_MAIN
