package dev.ember;

import com.tngtech.archunit.core.importer.ImportOption;
import com.tngtech.archunit.junit.AnalyzeClasses;
import com.tngtech.archunit.junit.ArchTest;
import com.tngtech.archunit.lang.ArchRule;

import static com.tngtech.archunit.lang.syntax.ArchRuleDefinition.noClasses;
import static com.tngtech.archunit.library.Architectures.layeredArchitecture;
import static com.tngtech.archunit.library.dependencies.SlicesRuleDefinition.slices;

/**
 * Ember's packages point one way (docs/architecture.md, "Packages and layers"), checked on the compiled main classes.
 * Bottom to top: the foundation (the root package, model, tokenizer, sampling, grammar, kvcache, trace); nativelib; backend with
 * monitor beside it; scheduler; engine; cli; server and bench, which use cli; report, which may use bench; app, which
 * registers every command and which nothing imports.
 */
@AnalyzeClasses(packages = "dev.ember", importOptions = ImportOption.DoNotIncludeTests.class)
class ArchitectureTest {
    private static final String FOUNDATION = "foundation";
    private static final String NATIVE = "nativelib";
    private static final String BACKEND = "backend";
    private static final String MONITOR = "monitor";
    private static final String SCHEDULER = "scheduler";
    private static final String ENGINE = "engine";
    private static final String CLI = "cli";
    private static final String SERVER = "server";
    private static final String BENCH = "bench";
    private static final String REPORT = "report";
    private static final String APP = "app";

    /** Each layer uses only those below it; every class is in a layer, so a new package must be placed. */
    @ArchTest
    static final ArchRule layers = layeredArchitecture().consideringOnlyDependenciesInLayers()
            .ensureAllClassesAreContainedInArchitecture()
            .layer(FOUNDATION).definedBy("dev.ember", "dev.ember.model..", "dev.ember.tokenizer..", "dev.ember.sampling..",
                    "dev.ember.grammar..", "dev.ember.kvcache..", "dev.ember.trace..")
            .layer(NATIVE).definedBy("dev.ember.nativelib..")
            .layer(BACKEND).definedBy("dev.ember.backend..")
            .layer(MONITOR).definedBy("dev.ember.monitor..")
            .layer(SCHEDULER).definedBy("dev.ember.scheduler..")
            .layer(ENGINE).definedBy("dev.ember.engine..")
            .layer(CLI).definedBy("dev.ember.cli..")
            .layer(SERVER).definedBy("dev.ember.server..")
            .layer(BENCH).definedBy("dev.ember.bench..")
            .layer(REPORT).definedBy("dev.ember.report..")
            .layer(APP).definedBy("dev.ember.app..")
            .whereLayer(FOUNDATION).mayNotAccessAnyLayer()
            .whereLayer(NATIVE).mayOnlyAccessLayers(FOUNDATION)
            .whereLayer(BACKEND).mayOnlyAccessLayers(FOUNDATION, NATIVE)
            .whereLayer(MONITOR).mayOnlyAccessLayers(FOUNDATION, NATIVE)
            .whereLayer(SCHEDULER).mayOnlyAccessLayers(FOUNDATION, NATIVE, BACKEND, MONITOR)
            .whereLayer(ENGINE).mayOnlyAccessLayers(FOUNDATION, NATIVE, BACKEND, MONITOR, SCHEDULER)
            .whereLayer(CLI).mayOnlyAccessLayers(FOUNDATION, NATIVE, BACKEND, MONITOR, SCHEDULER, ENGINE)
            .whereLayer(SERVER).mayOnlyAccessLayers(FOUNDATION, NATIVE, BACKEND, MONITOR, SCHEDULER, ENGINE, CLI)
            .whereLayer(BENCH).mayOnlyAccessLayers(FOUNDATION, NATIVE, BACKEND, MONITOR, SCHEDULER, ENGINE, CLI)
            .whereLayer(REPORT).mayOnlyAccessLayers(FOUNDATION, NATIVE, BACKEND, MONITOR, SCHEDULER, ENGINE, CLI, BENCH)
            .whereLayer(APP).mayNotBeAccessedByAnyLayer();

    /** No two top-level packages depend on each other, however indirectly. */
    @ArchTest
    static final ArchRule noCycles = slices().matching("dev.ember.(*)..").should().beFreeOfCycles();

    /** The root command registers the others; a command that imported it would close a cycle through it. */
    @ArchTest
    static final ArchRule appIsImportedByNothing = noClasses().that().resideOutsideOfPackage("dev.ember.app..")
            .should().dependOnClassesThat().resideInAPackage("dev.ember.app..");

    /** The monitor reads the GPU through NVML alone: it may run beside any backend, or none. */
    @ArchTest
    static final ArchRule monitorStandsBesideTheBackend = noClasses().that().resideInAPackage("dev.ember.monitor..")
            .should().dependOnClassesThat().resideInAnyPackage("dev.ember.backend..", "dev.ember.scheduler..",
                    "dev.ember.engine..");

    /**
     * Commands and the engine see a backend only through {@code Backend} and {@code ModelRunner}: only
     * {@code Backends}, the factory, names the CPU and CUDA backends' classes.
     */
    @ArchTest
    static final ArchRule backendsAreReachedThroughTheInterface = noClasses()
            .that().resideOutsideOfPackages("dev.ember.backend.cpu..", "dev.ember.backend.cuda..")
            .and().doNotHaveFullyQualifiedName("dev.ember.backend.Backends")
            .should().dependOnClassesThat().resideInAnyPackage("dev.ember.backend.cpu..", "dev.ember.backend.cuda..");

    /** The CPU and CUDA backends do not use each other. */
    @ArchTest
    static final ArchRule cpuDoesNotUseCuda = noClasses().that().resideInAPackage("dev.ember.backend.cpu..")
            .should().dependOnClassesThat().resideInAPackage("dev.ember.backend.cuda..");

    @ArchTest
    static final ArchRule cudaDoesNotUseCpu = noClasses().that().resideInAPackage("dev.ember.backend.cuda..")
            .should().dependOnClassesThat().resideInAPackage("dev.ember.backend.cpu..");

    /** Weight streaming's schedule is plain Java both backends share: it uses neither. */
    @ArchTest
    static final ArchRule streamingUsesNoBackend = noClasses().that().resideInAPackage("dev.ember.backend.streaming..")
            .should().dependOnClassesThat().resideInAnyPackage("dev.ember.backend.cpu..", "dev.ember.backend.cuda..");
}
