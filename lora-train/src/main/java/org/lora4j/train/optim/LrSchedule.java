package org.lora4j.train.optim;

import java.util.Locale;

/**
 * Learning rate per optimizer step, as Hugging Face's {@code get_*_schedule_with_warmup} computes it
 * (the research runs docs/research.md describes used HF's Trainer): during warm-up the rate rises linearly
 * from 0 at step 0, so the first step of a warmed-up run has rate 0, exactly as in HF.
 *
 * @param kind        constant, linear (decay to 0 at totalSteps) or cosine (half a cosine to 0)
 * @param peak        the rate after warm-up
 * @param warmupSteps steps of linear warm-up, 0 or more
 * @param totalSteps  the run's optimizer steps, used by the decaying schedules
 */
public record LrSchedule(Kind kind, double peak, int warmupSteps, int totalSteps) {

    public enum Kind {
        CONSTANT, LINEAR, COSINE;

        public static Kind parse(String s) {
            try {
                return valueOf(s.trim().toUpperCase(Locale.ROOT));
            } catch (IllegalArgumentException e) {
                throw new IllegalArgumentException("schedule must be constant, linear or cosine, got '" + s + "'");
            }
        }
    }

    public LrSchedule {
        if (!(peak >= 0) || !Double.isFinite(peak)) {
            throw new IllegalArgumentException("learning rate must be finite and >= 0, got " + peak);
        }
        if (warmupSteps < 0) {
            throw new IllegalArgumentException("warmup steps must be >= 0, got " + warmupSteps);
        }
        if (totalSteps < 1) {
            throw new IllegalArgumentException("total steps must be >= 1, got " + totalSteps);
        }
    }

    /** The rate for 0-based optimizer step {@code step}. */
    public double at(int step) {
        if (step < warmupSteps) {
            return peak * step / Math.max(1, warmupSteps);
        }
        if (kind == Kind.CONSTANT) {
            return peak;
        }
        double progress = (double) (step - warmupSteps) / Math.max(1, totalSteps - warmupSteps);
        if (kind == Kind.LINEAR) {
            return peak * Math.max(0.0, 1.0 - progress);
        }
        return peak * Math.max(0.0, 0.5 * (1.0 + Math.cos(Math.PI * progress)));
    }
}
