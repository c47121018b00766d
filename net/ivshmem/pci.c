// SPDX-License-Identifier: GPL-2.0
/*
 * PCI driver for QEMU's ivshmem device (1af4:1110), both flavours:
 *
 *   ivshmem-doorbell  BAR0 registers, BAR1 MSI-X table, BAR2 shared memory;
 *                     the IVPosition register holds this VM's peer id and a
 *                     write to the Doorbell register interrupts a peer.
 *   ivshmem-plain     BAR0 registers and BAR2 shared memory only: no
 *                     interrupts, no peer id (IVPosition reads 0).
 *
 * The modes are told apart by the MSI-X capability, since IVPosition reads 0
 * on ivshmem-plain and for the first doorbell peer alike.
 *
 * Claiming BAR0 and BAR2 marks them busy, and with CONFIG_IO_STRICT_DEVMEM
 * that also keeps user space from mapping them through sysfs: once this
 * driver is bound, only the kernel touches the region. BAR2 is mapped
 * write-back (memremap), because it is ordinary RAM on the host side and the
 * region protocol relies on cached atomics; BAR0 is mapped uncached.
 */

#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/interrupt.h>
#include <linux/io.h>
#include <linux/module.h>
#include <linux/pci.h>
#include <linux/slab.h>

#include "device.h"
#include "pci.h"

#define IVSHM_PCI_VENDOR	0x1af4
#define IVSHM_PCI_DEVICE	0x1110

#define IVSHM_BAR_REGS		0
#define IVSHM_BAR_SHMEM		2

/* BAR0 register offsets (QEMU docs/specs/ivshmem-spec.rst). */
#define IVSHM_REG_INTRMASK	0x00
#define IVSHM_REG_INTRSTATUS	0x04
#define IVSHM_REG_IVPOSITION	0x08
#define IVSHM_REG_DOORBELL	0x0c

struct ivshm_pci;

struct ivshm_pci_vec {
	struct ivshm_pci *ipci;
	unsigned int index;
	char name[32];
};

struct ivshm_pci {
	struct ivshm_dev idev;
	struct pci_dev *pdev;
	void __iomem *regs;
	unsigned int nr_irqs;		/* vectors with a handler installed */
	struct ivshm_pci_vec vecs[];
};

static irqreturn_t ivshm_pci_irq(int irq, void *data)
{
	struct ivshm_pci_vec *vec = data;

	ivshm_dev_interrupt(&vec->ipci->idev, vec->index);
	return IRQ_HANDLED;
}

static int ivshm_pci_ring(struct ivshm_dev *idev, u32 peer, u32 vector)
{
	struct ivshm_pci *ipci = container_of(idev, struct ivshm_pci, idev);

	if (!idev->nr_vectors)
		return -EOPNOTSUPP;
	if (peer > IVSHM_MAX_PEER_ID || vector >= IVSHM_MAX_VECTORS)
		return -EINVAL;

	writel(peer << 16 | vector, ipci->regs + IVSHM_REG_DOORBELL);
	return 0;
}

static const struct ivshm_dev_ops ivshm_pci_ops = {
	.ring = ivshm_pci_ring,
};

static void ivshm_pci_free_irqs(struct ivshm_pci *ipci)
{
	while (ipci->nr_irqs) {
		ipci->nr_irqs--;
		free_irq(pci_irq_vector(ipci->pdev, ipci->nr_irqs),
			 &ipci->vecs[ipci->nr_irqs]);
	}
}

static int ivshm_pci_request_irqs(struct ivshm_pci *ipci)
{
	struct pci_dev *pdev = ipci->pdev;
	unsigned int i;
	int ret;

	for (i = 0; i < ipci->idev.nr_vectors; i++) {
		struct ivshm_pci_vec *vec = &ipci->vecs[i];

		vec->ipci = ipci;
		vec->index = i;
		snprintf(vec->name, sizeof(vec->name), "%s-%u",
			 ipci->idev.name, i);
		ret = request_irq(pci_irq_vector(pdev, i), ivshm_pci_irq, 0,
				  vec->name, vec);
		if (ret) {
			ivshm_pci_free_irqs(ipci);
			return ret;
		}
		ipci->nr_irqs++;
	}
	return 0;
}

static int ivshm_pci_probe(struct pci_dev *pdev, const struct pci_device_id *id)
{
	resource_size_t shm_start, shm_len;
	struct ivshm_pci *ipci;
	int nvec, ret;

	nvec = pci_msix_vec_count(pdev);
	if (nvec < 0)
		nvec = 0;
	nvec = min(nvec, IVSHM_MAX_VECTORS);

	ipci = kzalloc(struct_size(ipci, vecs, nvec), GFP_KERNEL);
	if (!ipci)
		return -ENOMEM;
	ipci->pdev = pdev;
	pci_set_drvdata(pdev, ipci);

	ret = pci_enable_device_mem(pdev);
	if (ret)
		goto err_free;

	/* Exclusive: neither /dev/mem nor the sysfs resource files may map
	 * any BAR while we own the device, whatever CONFIG_IO_STRICT_DEVMEM
	 * says. We are the only one that touches the region.
	 */
	ret = pci_request_regions_exclusive(pdev, KBUILD_MODNAME);
	if (ret)
		goto err_disable;

	ipci->regs = pci_iomap(pdev, IVSHM_BAR_REGS, 0);
	if (!ipci->regs) {
		ret = -ENOMEM;
		goto err_release;
	}

	shm_start = pci_resource_start(pdev, IVSHM_BAR_SHMEM);
	shm_len = pci_resource_len(pdev, IVSHM_BAR_SHMEM);
	if (!shm_len) {
		dev_err(&pdev->dev, "BAR2 (shared memory) is empty\n");
		ret = -ENODEV;
		goto err_unmap_regs;
	}
	ipci->idev.region = memremap(shm_start, shm_len, MEMREMAP_WB);
	if (!ipci->idev.region) {
		dev_err(&pdev->dev, "cannot map BAR2 (%pa bytes)\n", &shm_len);
		ret = -ENOMEM;
		goto err_unmap_regs;
	}
	ipci->idev.region_size = shm_len;
	ipci->idev.ops = &ivshm_pci_ops;
	ipci->idev.parent = &pdev->dev;
	ipci->idev.transport = "pci";

	/* Without bus mastering, MSI-X messages are silently dropped. */
	pci_set_master(pdev);

	if (nvec) {
		ret = pci_alloc_irq_vectors(pdev, nvec, nvec, PCI_IRQ_MSIX);
		if (ret < 0) {
			dev_err(&pdev->dev, "cannot enable %d MSI-X vectors: %d\n",
				nvec, ret);
			goto err_clear_master;
		}
		ipci->idev.nr_vectors = nvec;
		ipci->idev.own_id = readl(ipci->regs + IVSHM_REG_IVPOSITION);
	} else {
		ipci->idev.own_id = IVSHM_ID_NONE;
	}

	ret = ivshm_dev_register(&ipci->idev);
	if (ret)
		goto err_free_vectors;

	ret = ivshm_pci_request_irqs(ipci);
	if (ret) {
		dev_err(&pdev->dev, "cannot install interrupt handlers: %d\n",
			ret);
		goto err_unregister;
	}
	return 0;

err_unregister:
	ivshm_dev_unregister(&ipci->idev);
err_free_vectors:
	if (nvec)
		pci_free_irq_vectors(pdev);
err_clear_master:
	pci_clear_master(pdev);
	memunmap(ipci->idev.region);
err_unmap_regs:
	pci_iounmap(pdev, ipci->regs);
err_release:
	pci_release_regions(pdev);
err_disable:
	pci_disable_device(pdev);
err_free:
	kfree(ipci);
	return ret;
}

static void ivshm_pci_remove(struct pci_dev *pdev)
{
	struct ivshm_pci *ipci = pci_get_drvdata(pdev);

	ivshm_pci_free_irqs(ipci);
	ivshm_dev_unregister(&ipci->idev);
	if (ipci->idev.nr_vectors)
		pci_free_irq_vectors(pdev);
	pci_clear_master(pdev);
	memunmap(ipci->idev.region);
	pci_iounmap(pdev, ipci->regs);
	pci_release_regions(pdev);
	pci_disable_device(pdev);
	kfree(ipci);
}

static const struct pci_device_id ivshm_pci_ids[] = {
	{ PCI_DEVICE(IVSHM_PCI_VENDOR, IVSHM_PCI_DEVICE) },
	{ }
};
MODULE_DEVICE_TABLE(pci, ivshm_pci_ids);

static struct pci_driver ivshm_pci_driver = {
	.name = KBUILD_MODNAME,
	.id_table = ivshm_pci_ids,
	.probe = ivshm_pci_probe,
	.remove = ivshm_pci_remove,
};

int ivshm_pci_init(void)
{
	return pci_register_driver(&ivshm_pci_driver);
}

void ivshm_pci_exit(void)
{
	pci_unregister_driver(&ivshm_pci_driver);
}
