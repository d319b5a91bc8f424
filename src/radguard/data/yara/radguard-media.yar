/*
 * RadGuard media rules, version 2026.11.1.
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
