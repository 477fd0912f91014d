package org.lora4j.train.optim;

import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.learning.AdamUpdater;
import org.nd4j.linalg.learning.config.Adam;

import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * AdamW (decoupled weight decay, Loshchilov and Hutter) or plain SGD over a fixed list of
 * {@link Parameter}s. Adam's moments are ND4J's {@link AdamUpdater}; weight decay is applied as
 * PyTorch's AdamW does, {@code p <- p·(1 - lr·wd)} before the Adam update.
 *
 * <p>ND4J's updater adds epsilon to sqrt(v) before the bias correction of v, PyTorch after it; the
 * epsilon handed to ND4J is therefore eps·sqrt(1-β2^t) at step t, which makes the update exactly
 * PyTorch's (checked against torch.optim.AdamW in OptimizerTest).
 *
 * <p>State (the moments and the step count) is exposed by name for checkpoints, so a resumed run
 * continues exactly.
 */
public final class Optimizer {
    public enum Kind {
        ADAMW, SGD;

        public static Kind parse(String s) {
            try {
                return valueOf(s.trim().toUpperCase(Locale.ROOT));
            } catch (IllegalArgumentException e) {
                throw new IllegalArgumentException("optimizer must be adamw or sgd, got '" + s + "'");
            }
        }
    }

    private final Kind kind;
    private final double weightDecay;
    private final List<Parameter> params;
    private final Adam adamConfig;
    private final double beta2;
    private final double eps;
    private final Map<String, AdamUpdater> updaters = new LinkedHashMap<>();
    private final Map<String, INDArray> moments = new LinkedHashMap<>();   // name -> [1, 2·len]: m then v
    private int step;

    private Optimizer(Kind kind, double beta1, double beta2, double eps, double weightDecay, List<Parameter> params) {
        if (!(weightDecay >= 0) || !Double.isFinite(weightDecay)) {
            throw new IllegalArgumentException("weight decay must be finite and >= 0, got " + weightDecay);
        }
        this.kind = kind;
        this.weightDecay = weightDecay;
        this.params = List.copyOf(params);
        this.beta2 = beta2;
        this.eps = eps;
        if (kind == Kind.ADAMW) {
            if (!(beta1 >= 0 && beta1 < 1) || !(beta2 >= 0 && beta2 < 1) || !(eps > 0)) {
                throw new IllegalArgumentException("AdamW needs 0 <= beta1, beta2 < 1 and eps > 0, got "
                        + beta1 + ", " + beta2 + ", " + eps);
            }
            adamConfig = new Adam(0.0, beta1, beta2, eps);
            for (Parameter p : this.params) {
                long len = p.value().length();
                INDArray state = Nd4j.zeros(p.value().dataType(), 1, 2 * len);
                AdamUpdater u = new AdamUpdater(adamConfig);
                u.setStateViewArray(state, p.grad().shape(), p.grad().ordering(), true);
                updaters.put(p.name(), u);
                moments.put(p.name(), state);
            }
        } else {
            adamConfig = null;
        }
    }

    /** AdamW with PyTorch's default betas (0.9, 0.999) and eps 1e-8. */
    public static Optimizer adamw(List<Parameter> params, double weightDecay) {
        return new Optimizer(Kind.ADAMW, 0.9, 0.999, 1e-8, weightDecay, params);
    }

    /** Plain SGD (no momentum), with decoupled weight decay if non-zero. */
    public static Optimizer sgd(List<Parameter> params, double weightDecay) {
        return new Optimizer(Kind.SGD, 0, 0, 0, weightDecay, params);
    }

    public static Optimizer create(Kind kind, List<Parameter> params, double weightDecay) {
        return kind == Kind.ADAMW ? adamw(params, weightDecay) : sgd(params, weightDecay);
    }

    /**
     * One update of every parameter from its gradient at learning rate {@code lr}. The gradients
     * are consumed: ND4J's updater turns them into the update in place.
     */
    public void step(double lr) {
        for (Parameter p : params) {
            if (weightDecay != 0 && lr != 0) {
                p.value().muli(1.0 - lr * weightDecay);
            }
            if (kind == Kind.SGD) {
                p.value().subi(p.grad().mul(lr));
            } else {
                adamConfig.setLearningRate(lr);
                adamConfig.setEpsilon(eps * Math.sqrt(1 - Math.pow(beta2, step + 1)));
                updaters.get(p.name()).applyUpdater(p.grad(), step, 0);
                p.value().subi(p.grad());
            }
        }
        step++;
    }

    /** Optimizer steps taken so far. */
    public int stepCount() {
        return step;
    }

    public Kind kind() {
        return kind;
    }

    public List<Parameter> parameters() {
        return params;
    }

    /** The moments by parameter name ({@code name + ".adam_mv"}, [1, 2·len], m then v); empty for SGD. */
    public Map<String, INDArray> state() {
        Map<String, INDArray> s = new LinkedHashMap<>();
        moments.forEach((name, m) -> s.put(name + ".adam_mv", m));
        return s;
    }

    /** Restores moments saved by {@link #state()} and the step count; every parameter must be present. */
    public void loadState(Map<String, INDArray> saved, int stepCount) {
        for (Map.Entry<String, INDArray> e : moments.entrySet()) {
            String key = e.getKey() + ".adam_mv";
            INDArray v = saved.get(key);
            if (v == null) {
                throw new IllegalArgumentException("optimizer state has no entry '" + key + "'");
            }
            if (v.length() != e.getValue().length()) {
                throw new IllegalArgumentException("optimizer state '" + key + "' has " + v.length()
                        + " values, expected " + e.getValue().length() + " (shape " + Arrays.toString(e.getValue().shape()) + ")");
            }
            e.getValue().assign(v.reshape(e.getValue().shape()).castTo(e.getValue().dataType()));
        }
        this.step = stepCount;
    }

    /** sqrt of the sum of squared gradients over all parameters, in double. */
    public double gradNorm() {
        double sum = 0;
        for (Parameter p : params) {
            double n = p.grad().norm2Number().doubleValue();
            sum += n * n;
        }
        return Math.sqrt(sum);
    }

    /**
     * Scales all gradients so their global norm is at most {@code maxNorm}, as
     * {@code torch.nn.utils.clip_grad_norm_} does (factor maxNorm / (norm + 1e-6), only when below 1).
     *
     * @return the norm before clipping
     */
    public double clipGradNorm(double maxNorm) {
        double norm = gradNorm();
        if (maxNorm > 0) {
            double factor = maxNorm / (norm + 1e-6);
            if (factor < 1) {
                for (Parameter p : params) {
                    p.grad().muli(factor);
                }
            }
        }
        return norm;
    }

    /** Sets every gradient to zero. */
    public void zeroGrad() {
        for (Parameter p : params) {
            p.grad().assign(0);
        }
    }

}
