/* SPDX-License-Identifier: GPL-2.0 */
#ifndef _IVSHM_PCI_H
#define _IVSHM_PCI_H

int ivshm_pci_init(void);
void ivshm_pci_exit(void);

#endif /* _IVSHM_PCI_H */
