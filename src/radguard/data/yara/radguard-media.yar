/*
 * RadGuard media rules, version 2026.11.2.
 * Small, high-confidence rules for outside imaging media. Written for RadGuard; see README.
 */

rule RadGuard_DICOM_PE_Polyglot
{
    meta:
        description = "DICOM file whose preamble is a Windows PE header (CVE-2019-11687)"
        severity = "critical"
    condition:
        uint16(0) == 0x5A4D and uint32(128) == 0x4D434944 and
        uint32(uint32(0x3C)) == 0x00004550
}

rule RadGuard_DICOM_ELF_Polyglot
{
    meta:
        description = "DICOM file whose preamble is an ELF header"
        severity = "critical"
    condition:
        uint32(0) == 0x464C457F and uint32(128) == 0x4D434944
}

rule RadGuard_EICAR_Test
{
    meta:
        description = "EICAR anti-malware test string"
        severity = "high"
    strings:
        $eicar = "X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"
    condition:
        $eicar at 0 or $eicar
}

rule RadGuard_PowerShell_Download_Cradle
{
    meta:
        description = "PowerShell that downloads and runs code"
        severity = "high"
    strings:
        $a = "IEX" nocase
        $b = "DownloadString" nocase
        $c = "Invoke-Expression" nocase
        $d = "FromBase64String" nocase
        $e = "-EncodedCommand" nocase
    condition:
        2 of them
}

rule RadGuard_Autorun_Open
{
    meta:
        description = "autorun.inf content that runs a program"
        severity = "high"
    strings:
        $s = "[autorun]" nocase
        $o = /\b(open|shellexecute)\s*=/ nocase
    condition:
        $s and $o
}

rule RadGuard_Embedded_PE
{
    meta:
        description = "Windows PE executable inside the file (private or unknown element, trailing data, wrapped document)"
        severity = "critical"
    strings:
        $pe = { 50 45 00 00 }
    condition:
        for any i in (1..#pe): (
            (uint16(@pe[i] + 4) == 0x014C or uint16(@pe[i] + 4) == 0x8664 or
             uint16(@pe[i] + 4) == 0xAA64 or uint16(@pe[i] + 4) == 0x01C4 or
             uint16(@pe[i] + 4) == 0x0200) and
            for any j in (0x40..0x400): (
                @pe[i] > j and uint16(@pe[i] - j) == 0x5A4D and uint32(@pe[i] - j + 0x3C) == j
            )
        )
}

rule RadGuard_Embedded_ELF
{
    meta:
        description = "ELF executable or shared object inside the file (private or unknown element, trailing data)"
        severity = "critical"
    strings:
        $elf = { 7F 45 4C 46 }
    condition:
        for any i in (1..#elf): (
            @elf[i] > 0 and
            (uint8(@elf[i] + 4) == 1 or uint8(@elf[i] + 4) == 2) and
            (uint8(@elf[i] + 5) == 1 or uint8(@elf[i] + 5) == 2) and
            uint8(@elf[i] + 6) == 1 and
            ((uint8(@elf[i] + 5) == 1 and (uint16(@elf[i] + 16) == 2 or uint16(@elf[i] + 16) == 3)) or
             (uint8(@elf[i] + 5) == 2 and (uint16be(@elf[i] + 16) == 2 or uint16be(@elf[i] + 16) == 3)))
        )
}
