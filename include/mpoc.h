/* mpoc.h: umbrella header of the mpoc library.
 *
 * mpoc factorizes dense weight matrices into matrix-product operators
 * (tensor-train matrices), reads and writes model files, and measures size
 * and error. All public symbols carry the mpoc_ / MPOC_ prefix. */
#ifndef MPOC_H
#define MPOC_H

#define MPOC_VERSION_MAJOR 0
#define MPOC_VERSION_MINOR 1
#define MPOC_VERSION_PATCH 0
#define MPOC_VERSION_STRING "0.1.0"

#include "mpoc_status.h"
#include "mpoc_mat.h"
#include "mpoc_dtype.h"
#include "mpoc_io.h"
#include "mpoc_model.h"
#include "mpoc_svd.h"
#include "mpoc_mpo.h"
#include "mpoc_synth.h"
#include "mpoc_plot.h"
#include "mpoc_llama.h"
#include "mpoc_quant.h"
#include "mpoc_container.h"
#include "mpoc_pipeline.h"
#include "mpoc_sweep.h"
#include "mpoc_synth_model.h"

#endif
