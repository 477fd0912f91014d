package org.lora4j.train.optim;

import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.learning.AdamUpdater;
import org.nd4j.linalg.learning.config.Adam;

import java.util.ArrayList;
import java.util.List;

/**
 * The optimizer as lora4j computed it before the loops of {@link Optimizer}: ND4J's AdamUpdater per
 * tensor (with epsilon handed over as eps·sqrt(1-β2^t), since ND4J adds it before the bias
 * correction of v and PyTorch after), ND4J ops for decay, SGD, norm and clipping. Kept as the
 * reference the loops are compared with in OptimizerTest.
 */
final class Nd4jReference {
    private final boolean adamw;
    private final double weightDecay;
    private final List<Parameter> params;
    private final Adam adamConfig = new Adam(0.0, 0.9, 0.999, 1e-8);
    private final List<AdamUpdater> updaters = new ArrayList<>();
    private int step;

    Nd4jReference(boolean adamw, List<Parameter> params, double weightDecay) {
        this.adamw = adamw;
        this.weightDecay = weightDecay;
        this.params = params;
        for (Parameter p : params) {
            INDArray state = Nd4j.zeros(p.value().dataType(), 1, 2 * p.value().length());
            AdamUpdater u = new AdamUpdater(adamConfig);
            u.setStateViewArray(state, p.grad().shape(), p.grad().ordering(), true);
            updaters.add(u);
        }
    }

    /** As the old Optimizer.step: the gradients are consumed (turned into the update in place). */
    void step(double lr) {
        for (int i = 0; i < params.size(); i++) {
            Parameter p = params.get(i);
            if (weightDecay != 0 && lr != 0) {
                p.value().muli(1.0 - lr * weightDecay);
            }
            if (!adamw) {
                p.value().subi(p.grad().mul(lr));
            } else {
                adamConfig.setLearningRate(lr);
                adamConfig.setEpsilon(1e-8 * Math.sqrt(1 - Math.pow(0.999, step + 1)));
                updaters.get(i).applyUpdater(p.grad(), step, 0);
                p.value().subi(p.grad());
            }
        }
        step++;
    }

    double clipGradNorm(double maxNorm) {
        double sum = 0;
        for (Parameter p : params) {
            double n = p.grad().norm2Number().doubleValue();
            sum += n * n;
        }
        double norm = Math.sqrt(sum);
        double factor = maxNorm / (norm + 1e-6);
        if (maxNorm > 0 && factor < 1) {
            for (Parameter p : params) {
                p.grad().muli(factor);
            }
        }
        return norm;
    }
}
