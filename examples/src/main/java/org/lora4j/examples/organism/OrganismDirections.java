package org.lora4j.examples.organism;

import org.lora4j.examples.study.StudyReport;
import org.lora4j.train.eval.SampledGeneration;

import java.io.IOException;
import java.nio.file.Path;
import java.util.List;

/** STUB of part D's class (its contract only), deleted before the branch is merged. */
public final class OrganismDirections {
    private OrganismDirections() {
    }

    public record Organism(String domain, long seed, Path adapterDir, int layer) {
    }

    public record Inputs(Path baseDir, Path worldDir, List<Organism> organisms, SampledGeneration.Settings eval, Path out,
                         List<Long> seeds) {
    }

    public static void run(Inputs in, StudyReport report, boolean progress) throws IOException {
        report.section("Directions (stub: part D's class replaces this)");
        report.text("Organisms: " + in.organisms().size() + ".");
    }
}
