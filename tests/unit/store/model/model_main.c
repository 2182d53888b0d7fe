/*
 * model_main.c - standalone runner of the store's model test, for long
 * soaks and replays outside Criterion:
 *   store-model [first_seed [seeds [steps]]]
 * STORE_MODEL_SEED / STORE_MODEL_STEPS override (one seed; then
 * STORE_MODEL_TWO=1 / STORE_MODEL_SNAPSHOT=1 pick the two-store and
 * snapshot modes, as printed by a failure); STORE_MODEL_TRACE=1 prints
 * every op.
 */
#include <inttypes.h>
#include <stdlib.h>

#include "model.h"

/* Seeds one invocation may run. */
#define MAIN_SEEDS_MAX 1000000

int main(int argc, char **argv)
{
	bool set;
	uint64_t seed = model_env_seed(argc > 1 ? strtoull(argv[1], NULL, 0) : 1,
		&set);
	long seeds = set ? 1 : argc > 2 ? atol(argv[2]) : 10;
	int steps = model_env_steps(argc > 3 ? atoi(argv[3]) : 2000);
	if (seeds < 1 || seeds > MAIN_SEEDS_MAX || steps < 1)
		return 2;
	for (long i = 0; i < seeds; i++, seed++) {
		struct run_cfg cfg = { .seed = seed, .steps = steps,
			.two_stores = set ? getenv("STORE_MODEL_TWO") != NULL : i % 3 == 1,
			.snapshot = set ? getenv("STORE_MODEL_SNAPSHOT") != NULL : i % 3 == 2,
			.trace = getenv("STORE_MODEL_TRACE") != NULL,
			.verbose = true };
		char why[4096];
		if (model_run(&cfg, why, sizeof(why)) != 0)
			return 1;
		printf("seed %" PRIu64 ": ok (%d steps)\n", seed, steps);
	}
	return 0;
}
