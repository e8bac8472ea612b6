package dev.ember.monitor;

/** Where an energy figure comes from. */
public enum EnergySource {
    /** The difference of the driver's total-energy counter (nvmlDeviceGetTotalEnergyConsumption) across the window. */
    COUNTER("nvml_energy_counter"),
    /** Power samples integrated over time (trapezoids), on GPUs without the counter: coarser, as fine as the interval. */
    INTEGRATED_POWER("integrated_power_samples");

    private final String label;

    EnergySource(String label) {
        this.label = label;
    }

    /** The name written in result files. */
    public String label() {
        return label;
    }
}
